from app.db.base import Base
from app.db import models

__all__ = ["Base", "models"]
