"""The Discord layer: the client, the error handler, rendering, shared UI and notifications."""
