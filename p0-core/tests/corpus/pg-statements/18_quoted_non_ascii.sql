-- expect: ok
SELECT * FROM app."ä"
