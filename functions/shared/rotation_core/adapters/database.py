"""The flow every database engine shares, written once (template method).

On top of logging in (:class:`~rotation_core.adapters.connector.Connector`), an engine fills in
changing the logged-in user's own password, another user's as an administrator, the read and
write probes, naming the logged-in account, and keeping a clone in line with its original.
This is the DatabaseEngine port's implementation.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from typing import Any, ClassVar

from rotation_core.adapters.connector import Connector
from rotation_core.exceptions import AuthenticationFailedError, ProbeFailedError
from rotation_core.models import DatabaseCredentials


class DatabaseEngine(Connector):
    """Log in, change a password, probe: the resource side of a database rotation."""

    # --- what each engine fills in ------------------------------------------------------------

    @abstractmethod
    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        """As the logged-in user, change that user's own password."""

    @abstractmethod
    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        """Read probe: raise if the session cannot read as the expected user."""

    @abstractmethod
    def _write_probe(self, conn: Any) -> None:
        """Write something the session can always write (a temporary table), then undo it."""

    @abstractmethod
    def _account(self, conn: Any) -> Any:
        """The account the session logged in as, as the server names it."""

    @abstractmethod
    def _sync_clone(self, conn: Any, original: Any, clone: str, password: str | None) -> None:
        """As the master: create ``clone`` if missing, set its password (unless None), and
        give it everything ``original`` can do."""

    @abstractmethod
    def _set_user_password(self, conn: Any, account: Any, password: str) -> None:
        """As an administrator, set another account's password (``account`` as ``_account``
        names it, or a bare user name)."""

    @abstractmethod
    def _account_exists(self, conn: Any, account: Any) -> bool:
        """As an administrator: does this account (as ``_account`` names it) exist?"""

    @abstractmethod
    def _is_twin(self, conn: Any, original: Any, clone: Any) -> bool:
        """As an administrator: can ``clone`` do nothing that ``original`` cannot? Then taking
        it over gives nobody anything they did not have."""

    # what the operator's probe reads (engines without them are not probed that far)
    def _admin_privileges(self, conn: Any) -> dict[str, bool]:
        """What the logged-in account holds of what a master needs (read-only): the
        privilege's name as the engine spells it, and whether it is held."""
        raise NotImplementedError

    def _clone_differences(self, conn: Any, original: Any, clone: Any) -> list[str]:
        """As an administrator, read-only: how ``clone`` differs from a twin of ``original``
        (empty when it can do nothing the original cannot and lacks nothing it has)."""
        raise NotImplementedError

    # optional steps of the alternating-users flow: engines that need them set the flag
    #: objects belong to users per database (PostgreSQL): fix ownership in the app's database
    OWNERSHIP_PER_DATABASE: ClassVar[bool] = False
    #: users carry settings of their own that the clone must copy (PostgreSQL)
    USER_SETTINGS: ClassVar[bool] = False

    def _fix_ownership(self, conn: Any, original: Any, clone: Any) -> None:
        """As the master, in the application's database: give the clone's objects to the
        original."""
        raise NotImplementedError

    def _copy_settings(self, conn: Any, original: Any, clone: Any) -> None:
        """As the master, in a session of its own: copy the original's per-user settings."""
        raise NotImplementedError

    # --- the shared flow ----------------------------------------------------------------------

    def change_own_password(self, creds: DatabaseCredentials, new_password: str) -> None:
        """Log in as ``creds`` and set that user's password to ``new_password``."""
        with self.session(creds) as conn:
            self._run(creds, "change password", self._set_own_password, conn, creds, new_password)

    def set_password_as(self, admin: DatabaseCredentials, account: Any, password: str) -> None:
        """Log in as ``admin`` (a master secret) and set ``account``'s password."""
        with self.session(admin) as conn:
            self._run(
                admin, "set password as master", self._set_user_password, conn, account, password
            )

    def probe(self, creds: DatabaseCredentials, *, write: bool = False) -> None:
        """Log in as ``creds`` and run the read probe (and the write probe if asked)."""
        with self.session(creds) as conn:
            try:
                self._run(creds, "read probe", self._probe, conn, creds)
                if write:
                    self._run(creds, "write probe", self._write_probe, conn)
            except AuthenticationFailedError as exc:
                raise ProbeFailedError(str(exc)) from None

    # --- alternating users ------------------------------------------------------------------

    def account(self, creds: DatabaseCredentials) -> Any:
        """Log in as ``creds`` (proving they work) and return the account's server-side name."""
        with self.session(creds) as conn:
            return self._run(creds, "read account", self._account, conn)

    def sync_clone(
        self,
        master: DatabaseCredentials,
        original: Any,
        clone: str,
        password: str | None,
        *,
        app_database: str | None = None,
    ) -> None:
        """With the master's sessions, make ``clone`` a working twin of ``original``.

        The master works in its own database (its secret's ``dbname``, else the engine's
        default), never in one the application owns, except for what must happen there
        (ownership of the application's objects). Settings copied from the original, which the
        application chooses, are applied in a session that does nothing else.
        """
        with self.session(master) as conn:
            self._run(
                master, "prepare the clone", self._sync_clone, conn, original, clone, password
            )
        if self.USER_SETTINGS:
            with self.session(master) as conn:
                self._run(master, "copy settings", self._copy_settings, conn, original, clone)
        if self.OWNERSHIP_PER_DATABASE:
            in_app = dataclasses.replace(master, dbname=app_database or master.dbname)
            with self.session(in_app) as conn:
                self._run(master, "hand objects over", self._fix_ownership, conn, original, clone)

    def account_exists(self, master: DatabaseCredentials, account: Any) -> bool:
        with self.session(master) as conn:
            return bool(self._run(master, "look up a user", self._account_exists, conn, account))

    # --- operator probes (read-only) ------------------------------------------------------------

    def admin_privileges(self, admin: DatabaseCredentials) -> dict[str, bool]:
        """Log in as ``admin`` and read which master privileges it holds."""
        with self.session(admin) as conn:
            return self._run(admin, "read privileges", self._admin_privileges, conn)

    def clone_differences(
        self, master: DatabaseCredentials, original: Any, clone: Any
    ) -> list[str]:
        """With the master: how ``clone`` differs from ``original`` (nothing is changed)."""
        with self.session(master) as conn:
            return self._run(
                master, "compare the users", self._clone_differences, conn, original, clone
            )

    def is_twin(self, master: DatabaseCredentials, original: Any, clone: Any) -> bool:
        with self.session(master) as conn:
            return bool(
                self._run(master, "compare the users", self._is_twin, conn, original, clone)
            )
