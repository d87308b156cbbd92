"""asyncio sockets for SIP (UDP, TCP, TLS): the only place that opens a SIP socket."""
