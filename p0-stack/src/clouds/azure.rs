//! The Azure Functions host in front of a custom handler.

use super::EasyAuth;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One function of a Functions app, as its `function.json` declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Function {
    /// An HTTP trigger: its route (under the host's prefix), methods and auth level.
    Http {
        route: String,
        methods: Vec<String>,
        auth_level: String,
    },
    /// A timer trigger: its schedule and the binding's name.
    Timer { schedule: String, binding: String },
}

/// A Functions app read from its directory: the route prefix, whether HTTP requests are
/// forwarded, and its functions by name.
#[derive(Debug, Clone)]
pub struct FunctionsApp {
    /// `extensions.http.routePrefix` (`api` by default).
    pub route_prefix: String,
    /// `customHandler.enableForwardingHttpRequest`.
    pub forwarding: bool,
    /// `customHandler.description`: the executable and its arguments.
    pub executable: String,
    /// Its arguments.
    pub arguments: Vec<String>,
    /// Functions by name (their directory's).
    pub functions: HashMap<String, Function>,
}

impl FunctionsApp {
    /// Reads `dir/host.json` and every `dir/*/function.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let host: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("host.json"))?)?;
        anyhow::ensure!(
            host["version"] == "2.0",
            "host.json: version must be \"2.0\""
        );
        let handler = &host["customHandler"];
        let mut functions = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let file = entry.path().join("function.json");
            if !file.exists() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
            let bindings = f["bindings"].as_array().cloned().unwrap_or_default();
            let trigger = bindings
                .iter()
                .find(|b| {
                    b["direction"] == "in"
                        && b["type"].as_str().is_some_and(|t| t.ends_with("Trigger"))
                })
                .ok_or_else(|| anyhow::anyhow!("{name}/function.json: no trigger"))?;
            let function = match trigger["type"].as_str() {
                Some("httpTrigger") => {
                    anyhow::ensure!(
                        bindings
                            .iter()
                            .any(|b| b["type"] == "http" && b["direction"] == "out"),
                        "{name}/function.json: an HTTP trigger needs an http output binding"
                    );
                    Function::Http {
                        route: trigger["route"].as_str().unwrap_or(&name).to_string(),
                        methods: trigger["methods"]
                            .as_array()
                            .map(|m| {
                                m.iter()
                                    .filter_map(|v| v.as_str())
                                    .map(str::to_lowercase)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        auth_level: trigger["authLevel"]
                            .as_str()
                            .unwrap_or("function")
                            .to_string(),
                    }
                }
                Some("timerTrigger") => Function::Timer {
                    schedule: trigger["schedule"].as_str().unwrap_or_default().to_string(),
                    binding: trigger["name"].as_str().unwrap_or_default().to_string(),
                },
                other => anyhow::bail!("{name}/function.json: trigger {other:?} is not served"),
            };
            functions.insert(name, function);
        }
        Ok(Self {
            route_prefix: host["extensions"]["http"]["routePrefix"]
                .as_str()
                .unwrap_or("api")
                .to_string(),
            forwarding: handler["enableForwardingHttpRequest"] == true,
            executable: handler["description"]["defaultExecutablePath"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            arguments: handler["description"]["arguments"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            functions,
        })
    }

    /// The URL path an HTTP function answers at.
    pub fn path_of(&self, route: &str) -> String {
        let prefix = self.route_prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("/{route}")
        } else {
            format!("/{prefix}/{route}")
        }
    }
}

/// The Functions host in front of a custom handler listening on `127.0.0.1:handler_port`.
pub struct FunctionsHost {
    /// The app's public URL (`http://127.0.0.1:PORT`).
    pub url: String,
    app: Arc<FunctionsApp>,
    handler: String,
    forwarded: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

struct Host {
    app: Arc<FunctionsApp>,
    handler: String,
    key: Option<String>,
    easy_auth: Option<EasyAuth>,
    http: reqwest::Client,
    forwarded: Arc<Mutex<Vec<String>>>,
}

impl FunctionsHost {
    /// Starts it for `app`, accepting `key` on function-level triggers.
    pub async fn start(app: FunctionsApp, handler_port: u16, key: &str) -> anyhow::Result<Self> {
        Self::start_with(app, handler_port, Some(key), None).await
    }

    /// Starts it for `app` with App Service authentication in front (`easy_auth`), and
    /// `key` (if any) as the function key.
    pub async fn start_with(
        app: FunctionsApp,
        handler_port: u16,
        key: Option<&str>,
        easy_auth: Option<EasyAuth>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(app.forwarding, "host.json does not forward HTTP requests");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let handler = format!("http://127.0.0.1:{handler_port}");
        let app = Arc::new(app);
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Host {
            app: app.clone(),
            handler: handler.clone(),
            key: key.map(str::to_string),
            easy_auth,
            http: reqwest::Client::new(),
            forwarded: forwarded.clone(),
        });
        let router = Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            url,
            app,
            handler,
            forwarded,
            task,
        })
    }

    /// The paths it forwarded to the handler, in order.
    pub fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Fires the timer function `name` as the host does: `POST /{name}` to the handler with
    /// the invocation payload; the handler's status and answer.
    pub async fn fire_timer(&self, name: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let Some(Function::Timer { binding, schedule }) = self.app.functions.get(name) else {
            anyhow::bail!("no timer function `{name}`");
        };
        let now = chrono::Utc::now().to_rfc3339();
        let payload = serde_json::json!({
            "Data": { binding: {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": { "Last": now, "Next": now, "LastUpdated": now },
                "IsPastDue": false,
            }},
            "Metadata": { "sys": { "MethodName": name, "UtcNow": now, "RandGuid": "00000000-0000-0000-0000-000000000000" } },
        });
        anyhow::ensure!(!schedule.is_empty(), "timer `{name}` has no schedule");
        let r = reqwest::Client::new()
            .post(format!("{}/{name}", self.handler))
            .json(&payload)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
    }
}

impl std::fmt::Debug for FunctionsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionsHost")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for FunctionsHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(host): State<Arc<Host>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let found = host.app.functions.values().find_map(|f| match f {
        Function::Http {
            route,
            methods,
            auth_level,
        } if host.app.path_of(route) == path => Some((methods, auth_level)),
        _ => None,
    });
    let Some((methods, auth_level)) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !methods.is_empty() && !methods.contains(&method.as_str().to_lowercase()) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    // App Service authentication comes first, for the whole app.
    if let Some(easy) = &host.easy_auth {
        if !easy.admits(path, &headers).await {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    // Function-level authorization: the key in `x-functions-key` or `?code=`.
    if auth_level != "anonymous" {
        let query_key = uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("code=").map(str::to_string))
        });
        let given = headers
            .get("x-functions-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or(query_key);
        if host.key.is_none() || given != host.key {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    if let Ok(mut f) = host.forwarded.lock() {
        f.push(path.to_string());
    }
    let mut req = host
        .http
        .request(method, format!("{}{}", host.handler, uri))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.send().await {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let ct = r.headers().get("content-type").cloned();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = (status, bytes).into_response();
            if let Some(ct) = ct {
                resp.headers_mut().insert("content-type", ct);
            }
            resp
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
