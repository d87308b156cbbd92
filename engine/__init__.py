"""UA Console's SIP user-agent engine.

Layers, from the bottom: ``sip`` (pure messages, transactions, dialogs, digest), ``ua`` (pure UA
sessions), ``transport`` (asyncio sockets), ``api`` (the engine's face), ``mi`` and ``store``
(control API and event log), ``cli`` (the headless command line). See docs/ARCHITECTURE.md.
"""
