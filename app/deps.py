"""FastAPI dependencies, as Annotated aliases."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.audio.storage import AudioStorage, get_storage
from app.config import Settings, get_settings
from app.db.session import new_session
from app.errors import Unauthorized


def _session() -> Iterator[Session]:
    session = new_session()
    try:
        yield session
    finally:
        session.close()


def _admin(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("this endpoint needs the admin token: send 'Authorization: Bearer <token>'")
    expected = settings.admin_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("the admin token is wrong")


SessionDep = Annotated[Session, Depends(_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[AudioStorage, Depends(get_storage)]
AdminAuth = Depends(_admin)
