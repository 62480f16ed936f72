"""HTML served by the sandbox's login and EMS hosts."""

# The script plays PerimeterX: it sets the bot-defence cookies a non-browser
# client never gets, then drives the same JSON calls the real page makes.
LOGIN_PAGE = """<!doctype html>
<html><head><title>Retail Link Login</title></head>
<body>
<h1>Retail Link</h1>
<form id="login-form">
  <label>User ID <input id="username" name="username" autocomplete="username"></label>
  <label>Password <input id="password" name="password" type="password"></label>
  <button id="sign-in" type="submit">Sign in</button>
</form>
<p id="login-error" role="alert"></p>
<section id="mfa" hidden><p>Choose how to receive your verification code.</p></section>
<script>
  (function () {
    var pxvid = "{{PXVID}}";
    document.cookie = "_pxvid=" + pxvid + "; path=/";
    document.cookie = "_px3=" + btoa(pxvid) + "; path=/";
    document.cookie = "pxcts=" + Date.now() + "; path=/";
  })();
  document.getElementById("login-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    var reply = await fetch("api/login", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: document.getElementById("password").value,
        language: "en"
      })
    });
    if (reply.ok) {
      document.getElementById("mfa").hidden = false;
      document.body.dataset.stage = "mfa";
    } else {
      var body = await reply.json().catch(function () { return {}; });
      document.getElementById("login-error").textContent = body.message || ("HTTP " + reply.status);
      document.body.dataset.stage = "error";
    }
  });
</script>
</body></html>
"""

EMS_PAGE = """<!doctype html><html><head><title>Event Management System</title></head>
<body><div id="__next">Event Management</div></body></html>
"""

CHALLENGE_PAGE = """<!doctype html><html><head><title>Access to this page has been denied</title></head>
<body><div id="px-captcha">Press &amp; Hold to confirm you are a human (and not a bot).</div></body></html>
"""
