"""The only package that speaks SQL: tables, migrations and repositories."""

from dstrail.store.engine import Store
from dstrail.store.repositories import ReadAhead, Repositories
from dstrail.store.schema import SHARED_CREDENTIALS_USER

__all__ = [
    "SHARED_CREDENTIALS_USER",
    "ReadAhead",
    "Repositories",
    "Store",
]
