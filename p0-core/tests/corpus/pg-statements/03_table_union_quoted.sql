-- expect: ok
TABLE app.mixed UNION ALL TABLE app."Mixed"
