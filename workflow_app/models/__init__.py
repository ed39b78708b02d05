"""SQLAlchemy 2.x typed models. Importing this package registers every table on `Base.metadata`
(Alembic's env.py and the tests rely on that)."""
from .base import Base, utcnow
from .org import ApiToken, Department, LoginSession, Membership, Substitution, User
from .process import CarbonCopy, ProcessDefinition, ProcessInstance, Task
from .park import Building, Enterprise, Park, ParkIndicator, Tenancy, Unit
from .monitoring import ParkWarning
from .security import SecurityEvent
from .trail import TrailAnchor, TrailEvent, TrailHead
from .notification import CalendarYear, Notification
from .attachment import Attachment

__all__ = ["Attachment", "TrailAnchor", "ApiToken", "Base", "utcnow", "Department", "LoginSession", "Membership", "Substitution", "User",
           "CarbonCopy", "ProcessDefinition", "ProcessInstance", "Task", "TrailEvent", "TrailHead", "SecurityEvent",
           "Building", "Enterprise", "Park", "ParkIndicator", "Tenancy", "Unit", "ParkWarning"]
