"""One module per export format; each registers itself with ``exportkit.registry``."""
