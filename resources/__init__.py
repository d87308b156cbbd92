"""Files the console ships: icons (SVG), SDP templates and the default configuration."""
