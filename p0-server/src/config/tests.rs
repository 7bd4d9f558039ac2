use super::*;

fn resource(agent: &str) -> anyhow::Result<ResourceConfig> {
    let text = format!(
        "name = \"pg/app\"\nengine = \"postgres\"\nhost = \"db\"\nport = 5432\ndatabase = \"app\"\n{agent}"
    );
    Ok(toml::from_str(&text)?)
}

#[test]
fn exactly_one_agent_transport() -> anyhow::Result<()> {
    let http = resource("agent_url = \"https://agent:7070\"")?;
    assert_eq!(
        http.agent_target()?,
        AgentTarget::Http {
            url: "https://agent:7070".into(),
            ca: None,
            platform: PlatformAuth::None,
        }
    );
    let lambda = resource("agent_function = \"arn:aws:lambda:eu-west-1:1:function:a\"")?;
    assert_eq!(
        lambda.agent_target()?,
        AgentTarget::Lambda {
            function: "arn:aws:lambda:eu-west-1:1:function:a".into(),
            endpoint: None,
            max_attempts: 1,
        }
    );
    let both = resource("agent_url = \"https://a\"\nagent_function = \"f\"")?;
    let err = both.agent_target().unwrap_err().to_string();
    assert_eq!(
        err,
        "resource `pg/app`: set agent_url or agent_function, not both"
    );
    let none = resource("")?;
    let err = none.agent_target().unwrap_err().to_string();
    assert!(err.contains("no agent"), "{err}");
    // Zero attempts would mean never calling: read as one.
    let zero = resource("agent_function = \"f\"\nagent_lambda_max_attempts = 0")?;
    assert!(matches!(
        zero.agent_target()?,
        AgentTarget::Lambda {
            max_attempts: 1,
            ..
        }
    ));
    Ok(())
}

fn server(resource: &str) -> String {
    format!(
        "listen = \"127.0.0.1:7080\"\nstore = \"sqlite::memory:\"\nissuer = \"https://login.example.com\"\n\
         audience = \"p0\"\nrules = \"-\"\n[[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\n\
         host = \"db\"\nport = 5432\ndatabase = \"app\"\nagent_secret = \"s\"\n{resource}"
    )
}

/// Loads a server config and returns what it logged.
fn load_logging(text: &str) -> (anyhow::Result<ServerConfig>, String) {
    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, || ServerConfig::from_toml(text));
    let logged = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    (result, logged)
}

#[test]
fn plain_http_to_an_agent_off_loopback_is_refused_at_load() {
    let (result, logged) = load_logging(&server("agent_url = \"http://agent.internal:7070\""));
    let err = result.map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        err,
        "resource `pg/app`: agent_url `http://agent.internal:7070` is plain http to a host that is not loopback: use https (with agent_ca), or set dangerous_plain_http = true"
    );
    assert!(!err.contains('\n'));
    assert!(logged.is_empty(), "{logged}");
    for url in [
        "http://10.0.0.5:7070",
        "http://0.0.0.0:7070",
        "http://[fe80::1]:7070",
    ] {
        let (result, _) = load_logging(&server(&format!("agent_url = \"{url}\"")));
        assert!(result.is_err(), "{url}");
    }
}

#[test]
fn plain_http_to_loopback_and_https_load_quietly() {
    for url in [
        "http://127.0.0.1:7070",
        "http://127.0.0.2:7070",
        "http://[::1]:7070",
        "http://localhost:7070",
        "https://agent.internal:7070",
    ] {
        let (result, logged) = load_logging(&server(&format!("agent_url = \"{url}\"")));
        assert!(result.is_ok(), "{url}: {:?}", result.err());
        assert!(logged.is_empty(), "{url}: {logged}");
    }
}

#[test]
fn a_platform_authenticates_an_http_agent_its_own_way() -> anyhow::Result<()> {
    let run = resource(
        "agent_url = \"https://a.run.app\"\nagent_google_audience = \"https://a.run.app\"",
    )?;
    assert!(matches!(
        run.agent_target()?,
        AgentTarget::Http { platform: PlatformAuth::GoogleIdToken { audience }, .. } if audience == "https://a.run.app"
    ));
    let azure = resource(
        "agent_url = \"https://f.azurewebsites.net\"\nagent_function_key = \"k3y\"\nagent_entra_audience = \"api://p0-agent\"",
    )?;
    let target = azure.agent_target()?;
    assert!(matches!(
        &target,
        AgentTarget::Http { platform: PlatformAuth::Azure { function_key: Some(_), entra_audience: Some(a) }, .. } if a == "api://p0-agent"
    ));
    assert!(!format!("{target:?}").contains("k3y"), "{target:?}");
    for (extra, why) in [
        ("agent_url = \"https://a\"\nagent_google_audience = \"a\"\nagent_function_key = \"k\"", "not both"),
        ("agent_url = \"https://a\"\nagent_google_audience = \"a\"\nagent_entra_audience = \"k\"", "not both"),
        ("agent_url = \"https://a\"\nagent_function_key = \" \"", "is empty"),
        ("agent_function = \"f\"\nagent_function_key = \"k\"", "not agent_function"),
    ] {
        let err = resource(extra)?.agent_target().unwrap_err().to_string();
        assert!(err.contains(why), "{extra}: {err}");
    }
    Ok(())
}

#[test]
fn dangerous_plain_http_is_accepted_and_logged_as_a_warning() {
    let (result, logged) = load_logging(&server(
        "agent_url = \"http://agent.internal:7070\"\ndangerous_plain_http = true",
    ));
    let config = result.unwrap();
    assert_eq!(
        config.resources[0].agent_target().unwrap(),
        AgentTarget::Http {
            url: "http://agent.internal:7070".into(),
            ca: None,
            platform: PlatformAuth::None,
        }
    );
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains("dangerous_plain_http"), "{logged}");
    assert!(logged.contains("pg/app"), "{logged}");
}

#[test]
fn agent_ca_goes_with_an_https_agent_only() {
    let (result, _) = load_logging(&server(
        "agent_url = \"https://agent.internal:7070\"\nagent_ca = \"/etc/p0/agent-ca.pem\"",
    ));
    assert_eq!(
        result.unwrap().resources[0].agent_target().unwrap(),
        AgentTarget::Http {
            url: "https://agent.internal:7070".into(),
            ca: Some("/etc/p0/agent-ca.pem".into()),
            platform: PlatformAuth::None,
        }
    );
    let (result, _) = load_logging(&server(
        "agent_url = \"http://127.0.0.1:7070\"\nagent_ca = \"ca.pem\"",
    ));
    let err = result.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("agent_ca is set but agent_url"), "{err}");
    let err = resource("agent_function = \"f\"\nagent_ca = \"ca.pem\"")
        .unwrap()
        .agent_target()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not agent_function"), "{err}");
    let (result, _) = load_logging(&server("agent_url = \"ftp://agent:21\""));
    let err = result.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("neither https nor http"), "{err}");
}

#[cfg(not(feature = "lambda"))]
#[test]
fn a_lambda_agent_without_the_feature_is_a_clear_error() {
    let rid = ResourceId::new("pg/app").unwrap_or_else(|e| panic!("{e}"));
    let err = crate::AgentClient::lambda(&rid, "f".into(), None, 1)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--features lambda"), "{err}");
}

#[test]
fn secrets_stay_out_of_debug_and_parse_errors() -> anyhow::Result<()> {
    let r = resource(
        "agent_url = \"https://a.azurewebsites.net/api\"\nagent_secret = \"hmac-s3cret\"\nagent_function_key = \"fn-s3cret\"",
    )?;
    let shown = format!("{r:?}");
    assert!(
        !shown.contains("s3cret") && shown.contains("<redacted>"),
        "{shown}"
    );
    let broken = server("agent_function_key = \"fn-s3cret\" trailing");
    let e = ServerConfig::from_toml(&broken).unwrap_err().to_string();
    assert!(!e.contains("s3cret") && e.starts_with("line 13:"), "{e}");
    Ok(())
}
