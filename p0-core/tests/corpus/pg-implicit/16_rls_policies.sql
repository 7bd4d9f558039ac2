-- expect: ok
SELECT body FROM imp.docs
