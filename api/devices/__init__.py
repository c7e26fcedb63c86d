"""Window rating devices (评价器): the WebSocket back-end a counter pad logs in to (docs/devices.md).

- protocol.py: the JSON commands and answers, error codes and close codes;
- login.py: how a device proves itself (a work number and its hall system's API key), failed-login limit;
- pages.py: the rating link of a window transaction, what one push says, the pages still pending;
- bus.py: notices between API processes (PostgreSQL LISTEN/NOTIFY, or in-process on SQLite);
- hub.py: the devices connected to this process, one per staff member, and where a notice goes;
- connection.py: one device's conversation; router.py: the route.
"""
