//! Stream framing for SIP over TCP/TLS: Content-Length framing, size bounds, CRLF keep-alives (RFC 5626).
