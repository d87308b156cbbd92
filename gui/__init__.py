"""The PySide6 operator console. Talks to the engine through engine.api only."""
