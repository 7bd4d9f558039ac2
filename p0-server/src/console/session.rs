//! The console's cookies: the signed-in session and the login in progress, each encrypted and
//! authenticated with the console's key (`cookie`'s private jar: AES-256-GCM), HttpOnly,
//! SameSite=Lax, and Secure with the `__Host-` prefix when the console is served over TLS. The
//! session carries the CSRF token every form must return.

use super::Console;
use crate::lifecycle::Actor;
use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, CookieJar, SameSite};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// How long a console session lasts, at most (the ID token's own expiry may end it sooner
/// only for the API; the console keeps its own clock).
pub const SESSION_HOURS: i64 = 8;
/// How long a login may take at the issuer.
pub const LOGIN_MINUTES: i64 = 10;

/// A signed-in approver.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The name actions are attributed to (as the API's: e-mail, else subject).
    pub name: String,
    /// The groups of their ID token.
    pub groups: Vec<String>,
    /// The token every form returns.
    pub csrf: String,
    /// Unix time after which the session is over.
    pub exp: i64,
}

impl Session {
    /// The approver as the lifecycle sees them.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            name: &self.name,
            groups: &self.groups,
        }
    }

    /// Whether `token` (from a form) is this session's CSRF token, compared in constant time.
    pub fn csrf_ok(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.csrf.len() == token.len() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// A login in progress: what the callback must find again.
#[derive(Serialize, Deserialize)]
pub struct LoginFlow {
    /// The `state` sent to the issuer.
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// Where to go once signed in (a console path).
    pub next: String,
    /// Unix time after which the login is stale.
    pub exp: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFlow")
            .field("next", &self.next)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// The largest cookie browsers keep (4096 bytes, name and attributes included), with room.
pub const MAX_COOKIE: usize = 3800;

const SESSION: &str = "p0_console";
const LOGIN: &str = "p0_console_login";

/// 32 random bytes from the operating system's CSPRNG, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Console {
    fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    fn read<T: DeserializeOwned>(&self, headers: &HeaderMap, base: &str) -> Option<T> {
        let mut jar = CookieJar::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for c in Cookie::split_parse(text.to_string()).flatten() {
                jar.add_original(c);
            }
        }
        let c = jar.private(&self.key).get(&self.name(base))?;
        serde_json::from_str(c.value()).ok()
    }

    fn set<T: Serialize>(
        &self,
        base: &str,
        value: &T,
        max_age: cookie::time::Duration,
    ) -> Option<HeaderValue> {
        let mut jar = CookieJar::new();
        let text = serde_json::to_string(value).unwrap_or_default();
        jar.private_mut(&self.key).add(
            Cookie::build((self.name(base), text))
                .path("/")
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Lax)
                .max_age(max_age),
        );
        jar.delta()
            .next()
            .and_then(|c| HeaderValue::from_str(&c.to_string()).ok())
    }

    fn clear(&self, base: &str) -> HeaderValue {
        let c = Cookie::build((self.name(base), ""))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The signed-in session, if its cookie decrypts and it has not expired.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let s: Session = self.read(headers, SESSION)?;
        (s.exp > chrono::Utc::now().timestamp()).then_some(s)
    }

    /// The `Set-Cookie` of a new session, or `None` when it would be too large for a browser
    /// to keep (an ID token with very many groups).
    pub fn start_session(&self, s: &Session) -> Option<HeaderValue> {
        let left = (s.exp - chrono::Utc::now().timestamp()).max(0);
        self.set(SESSION, s, cookie::time::Duration::seconds(left))
            .filter(|v| v.len() <= MAX_COOKIE)
    }

    /// The `Set-Cookie` that ends the session.
    pub fn end_session(&self) -> HeaderValue {
        self.clear(SESSION)
    }

    /// The login in progress, if its cookie decrypts and it is fresh.
    pub fn login_flow(&self, headers: &HeaderMap) -> Option<LoginFlow> {
        let f: LoginFlow = self.read(headers, LOGIN)?;
        (f.exp > chrono::Utc::now().timestamp()).then_some(f)
    }

    /// The `Set-Cookie` of a login in progress.
    pub fn start_login(&self, f: &LoginFlow) -> Option<HeaderValue> {
        self.set(LOGIN, f, cookie::time::Duration::minutes(LOGIN_MINUTES))
    }

    /// The `Set-Cookie` that forgets the login in progress.
    pub fn end_login(&self) -> HeaderValue {
        self.clear(LOGIN)
    }
}
