"""The application: units of work per area, written once against bot/store/ports.py, and the workers."""
