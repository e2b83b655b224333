"""The runtime: the one dispatcher, the one READY, and the wire facade they write through."""
