"""The engine's face: the Engine, its immutable data types and configuration."""
