"""Plays the user's browser on another device for the device grant: opens the verification
URL and submits each page's form (confirm the code, sign in as USER, consent) until a page has
no form left, then prints that page's text. Standard library only.

    python3 browser.py VERIFICATION_URL USER
"""
import html
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

url, user = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
page = opener.open(url, timeout=30)
for _ in range(10):
    body = page.read().decode()
    form = re.search(r'<form([^>]*)>(.*?)</form>', body, re.S)
    if not form:
        print(" ".join(re.sub(r"<style.*?</style>|<[^>]+>", " ", body, flags=re.S).split()))
        sys.exit(0)
    action = re.search(r'action="([^"]*)"', form.group(1))
    target = urllib.parse.urljoin(page.geturl(), html.unescape(action.group(1)) if action else "")
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form.group(2)):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, value in re.findall(r'<button[^>]*name="([^"]*)"[^>]*value="([^"]*)"', form.group(2)):
        fields.setdefault(name, value)
    if "login" in fields:
        fields["login"] = user
    if "password" in fields:
        fields["password"] = "any"
    page = opener.open(target, urllib.parse.urlencode(fields).encode(), timeout=30)
sys.exit("the provider kept asking")
