"""What the local cloud and its moto patches need from each other and from a runtime.

The patches run inside moto and must find the runtime whose stack a call concerns; the cloud
keeps the runtimes and their pooled stacks. Both see them only through these Protocols, so
neither imports :mod:`rotator.local` (which builds on both) and the patches do not import
:mod:`rotator.aws_local.cloud` (which starts them): the imports run one way, from ``local`` down
to the cloud, the patches and this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rotator.aws_local.lambda_host import FunctionHost, FunctionSpec
    from rotator.aws_local.stack import Deployed
    from rotator.iam_checker import IamChecker

#: the one account moto serves locally
ACCOUNT = "123456789012"


class Runtime(Protocol):
    """A local runtime using a stack, as the cloud and the patches see it."""

    @property
    def region(self) -> str: ...

    @property
    def host(self) -> FunctionHost | None: ...

    @property
    def iam(self) -> IamChecker | None: ...

    @property
    def cloud(self) -> Cloud | None: ...

    @property
    def rotations(self) -> list[Any]: ...

    def key_still_propagating(self, key: Any) -> bool: ...

    def emit_service_event(self, detail_type: str, detail: dict[str, Any]) -> list[Any]: ...

    def secrets_manager_may_invoke(self, function_arn: str, secret_arn: str) -> None: ...


class PooledStack(Protocol):
    """A deployed stack the cloud keeps between runtimes."""

    @property
    def deployed(self) -> Deployed: ...

    def close(self) -> None: ...


class Cloud(Protocol):
    """The running local cloud, as the patches see it."""

    key_creators: dict[str, Runtime]

    def find_runtime(self, name_or_arn: str) -> Runtime | None: ...

    def find_function(self, name_or_arn: str) -> tuple[FunctionHost, FunctionSpec] | None: ...
