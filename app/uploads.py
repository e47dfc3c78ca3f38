"""Reading uploaded files with a size limit, and committing with staged audio."""

from __future__ import annotations

from fastapi import UploadFile

from app.errors import InvalidInput, TooLarge


async def read_upload(upload: UploadFile, *, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                f"{upload.filename or 'the upload'} is larger than the limit of {limit / 1e6:.0f} MB"
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise InvalidInput(f"{upload.filename or 'the upload'} is empty")
    return data
