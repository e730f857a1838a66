"""One moto "cloud" per process: started once, shared by every local stack, patched to behave
like AWS.

The first :class:`~rotator.local.LocalRuntime` (or a test session holding a reference) starts
moto with its Step Functions executor on and every patch of :mod:`rotator.aws_local.patches`;
the last one to leave stops it. Stacks deployed into it are kept in a pool: a runtime asking for
a stack of the same template and parameters gets an idle one back (after the previous user's
secrets, users, executions and alerts were cleaned up) instead of deploying again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from rotator.aws_local.contracts import ACCOUNT, PooledStack, Runtime
from rotator.aws_local.patches import MotoPatch, all_patches

if TYPE_CHECKING:
    from rotator.aws_local.lambda_host import FunctionHost, FunctionSpec

__all__ = ["ACCOUNT", "LocalCloud"]


class LocalCloud:
    """moto with the local runtime's patches, reference-counted."""

    _current: ClassVar[LocalCloud | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()
    #: keep the cloud (and its deployed stacks) from its first use until :meth:`let_go`
    _kept: ClassVar[bool] = False

    def __init__(self) -> None:
        self._refs = 0
        self._use_lock = threading.RLock()
        self._mock: Any = None
        self.patches: dict[type[MotoPatch], MotoPatch] = {}
        #: runtimes using a stack right now
        self.runtimes: list[Runtime] = []
        #: idle stacks by (template, parameters, requested name)
        self.pool: dict[tuple[Any, ...], list[PooledStack]] = {}
        self.stack_names: set[str] = set()
        #: access key id -> the runtime whose function created it (propagation simulation)
        self.key_creators: dict[str, Runtime] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def acquire(cls) -> LocalCloud:
        with cls._lock:
            if cls._current is None:
                cloud = cls()
                cloud._start()
                cls._current = cloud
                if cls._kept:
                    cloud._refs += 1  # released by let_go()
            cls._current._refs += 1
            return cls._current

    @classmethod
    def keep(cls) -> None:
        """From now on, keep the cloud alive between runtimes (a test session deploys each
        stack once, then reuses it)."""
        cls._kept = True

    @classmethod
    def let_go(cls) -> None:
        """Undo :meth:`keep`; stops the cloud if no runtime uses it."""
        with cls._lock:
            was_kept, cls._kept = cls._kept, False
            cloud = cls._current
        if was_kept and cloud is not None:
            cloud.release()

    def release(self) -> None:
        with LocalCloud._lock:
            self._refs -= 1
            if self._refs > 0:
                return
            LocalCloud._current = None
        self._stop()

    def _start(self) -> None:
        from moto import mock_aws

        # moto logs every failed state at ERROR with its whole parse tree; the execution
        # history already says what failed. samtranslator warns about its own metrics.
        if not os.environ.get("ROTATOR_DEBUG"):
            logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        logging.getLogger("samtranslator").setLevel(logging.ERROR)
        # moto warns for every type its CloudFormation skips; uncreated.py creates those.
        logging.getLogger("moto").setLevel(logging.ERROR)
        # The STS patches refuse keys with errors that moto's STS model does not list.
        warnings.filterwarnings(
            "ignore",
            message=r"Exception\(STSClientError\) with code (InvalidClientTokenId|SignatureDoesNotMatch)",
        )
        warnings.filterwarnings("ignore", message=r"Tried to parse AWS::", category=UserWarning)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self.patches = {patch_class: patch_class(self) for patch_class in all_patches()}
        self._live = False
        self._fresh = True
        self._users = 0

    # Between runtimes the cloud is idle: moto's mock and the patches are off, so other code of
    # the process (a test with its own mock_aws) sees plain moto; the deployed stacks' data stays
    # in moto's backends for the next runtime, unless someone reset them meanwhile.

    def enter(self) -> None:
        """A runtime starts using the cloud: moto and the patches on."""
        with self._use_lock:
            self._users += 1
            if not self._live:
                self._go_live()

    def leave(self) -> None:
        with self._use_lock:
            self._users -= 1
            if self._users == 0 and self._live:
                self._go_idle()

    def _go_live(self) -> None:
        self._mock.start(reset=self._fresh)
        self._fresh = False
        self._live = True
        for patch in self.patches.values():
            patch.start()
        if not self._pooled_stacks_exist():
            # another mock_aws reset moto's backends: the pool is gone with them
            for handles in self.pool.values():
                for handle in handles:
                    handle.close()
            self.pool.clear()
            self.stack_names.clear()
            self.key_creators.clear()

    def _go_idle(self) -> None:
        for patch in reversed(list(self.patches.values())):
            with contextlib.suppress(Exception):
                patch.stop()
        self._mock.stop(remove_data=False)
        self._live = False

    def _pooled_stacks_exist(self) -> bool:
        from moto.cloudformation.models import cloudformation_backends

        for handles in self.pool.values():
            for handle in handles:
                region = handle.deployed.stack_id.split(":")[3]
                if handle.deployed.stack_id not in cloudformation_backends[ACCOUNT][region].stacks:
                    return False
        return True

    def _stop(self) -> None:
        if self._live:
            self._go_idle()
        for handles in self.pool.values():
            for handle in handles:
                handle.close()
        self.pool.clear()
        if self._mock is not None and not self._fresh:
            # drop what the stacks left in moto's backends
            self._mock.start(reset=False)
            self._mock.stop(remove_data=True)
        self._mock = None

    @contextlib.contextmanager
    def suspended(self, patch_class: type[MotoPatch]) -> Iterator[None]:
        """moto's own behaviour for the body (fidelity tests show each patch is needed)."""
        patch = self.patches[patch_class]
        patch.stop()
        try:
            yield
        finally:
            patch.start()

    # --- what the patches look up -----------------------------------------------------------

    def find_runtime(self, name_or_arn: str) -> Runtime | None:
        """The runtime whose stack has this function (name, ARN or qualified ARN)."""
        for runtime in list(self.runtimes):
            if runtime.host is not None and runtime.host.find(name_or_arn) is not None:
                return runtime
        return None

    def find_function(self, name_or_arn: str) -> tuple[FunctionHost, FunctionSpec] | None:
        runtime = self.find_runtime(name_or_arn)
        if runtime is None or runtime.host is None:
            return None
        spec = runtime.host.find(name_or_arn)
        return (runtime.host, spec) if spec is not None else None
