"""SQLAlchemy 2.x typed models. Importing this package registers every table on `Base.metadata`
(Alembic's env.py and the tests rely on that)."""
from .base import Base, utcnow
from .org import Department, LoginSession, Membership, Substitution, User
from .process import CarbonCopy, ProcessDefinition, ProcessInstance, Task
from .trail import TrailEvent, TrailHead

__all__ = ["Base", "utcnow", "Department", "LoginSession", "Membership", "Substitution", "User",
           "CarbonCopy", "ProcessDefinition", "ProcessInstance", "Task", "TrailEvent", "TrailHead"]
