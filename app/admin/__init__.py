"""The admin pages: models, their inference progress and outages, behind the admin token."""
