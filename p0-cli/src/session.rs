//! The CLI's local state: server URL, key pair and ID token, under the user's config dir
//! (`$P0_CONFIG_DIR`, else the platform's: `$XDG_CONFIG_HOME/p0` or `~/.config/p0` on Linux,
//! `~/Library/Application Support/p0` on macOS), files mode 0600.

use anyhow::{bail, Context};
use p0_core::{KeyPair, SecretBytes, Token};
use std::path::{Path, PathBuf};

/// How long a key replaced by a new login is kept: longer than any grant lasts.
pub const KEEP_OLD_KEYS_HOURS: u64 = 25;

/// Where the CLI keeps its state.
#[derive(Debug, Clone)]
pub struct Session {
    dir: PathBuf,
}

/// Writes a file readable by its owner only, atomically: a crash leaves the old file or the new
/// one, never half of either (a temporary file in the same directory, synced, then renamed).
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

impl Session {
    /// The session directory, created 0700 if missing.
    pub fn open() -> anyhow::Result<Self> {
        let dir = match std::env::var_os("P0_CONFIG_DIR") {
            Some(d) => PathBuf::from(d),
            // $XDG_CONFIG_HOME/p0 or ~/.config/p0 on Linux, ~/Library/Application Support/p0
            // on macOS.
            None => directories::ProjectDirs::from("", "", "p0")
                .context("no home directory to keep p0's login in: set P0_CONFIG_DIR")?
                .config_dir()
                .to_path_buf(),
        };
        Self::at(dir)
    }

    /// A session in `dir`: created 0700 when missing; an existing directory keeps its mode,
    /// and is refused if other users can write to it (they could replace the key or the
    /// token p0 keeps there).
    pub fn at(dir: PathBuf) -> anyhow::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => bail!("{} is not a directory", dir.display()),
            Ok(m) if m.permissions().mode() & 0o022 != 0 => bail!(
                "{} can be written by other users (mode {:o}): p0 keeps your key there; `chmod go-w {}` or choose another P0_CONFIG_DIR",
                dir.display(),
                m.permissions().mode() & 0o7777,
                dir.display()
            ),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("creating {}", dir.display()))?,
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        }
        Ok(Self { dir })
    }

    /// Makes a fresh key pair for a login under way. Nothing is written until the login
    /// succeeds ([`Session::save_login`]): a login that fails leaves the current key and every
    /// grant sealed to it as they were.
    pub fn new_key(&self) -> anyhow::Result<KeyPair> {
        Ok(KeyPair::generate()?)
    }

    /// Saves a successful login with its new key. The key it replaces is kept under `keys/`
    /// until every grant sealed to it has expired ([`KEEP_OLD_KEYS_HOURS`]), so those grants
    /// still open.
    pub fn save_login(&self, server: &str, token: &Token, key: &KeyPair) -> anyhow::Result<()> {
        self.keep_current_key()?;
        write_private(&self.dir.join("key.pem"), key.private_pem.expose_secret())?;
        write_private(&self.dir.join("key.pub.pem"), key.public_pem.as_bytes())?;
        self.save_token(server, token)
    }

    /// Saves a refreshed token for the same key.
    pub fn save_token(&self, server: &str, token: &Token) -> anyhow::Result<()> {
        write_private(&self.dir.join("token"), token.expose_secret().as_bytes())?;
        write_private(&self.dir.join("server"), server.as_bytes())?;
        Ok(())
    }

    /// Forgets the login (token, server, refresh token); keys stay until their grants expire.
    pub fn logout(&self) -> anyhow::Result<bool> {
        let mut had = false;
        for name in ["token", "server", "oidc.json"] {
            match std::fs::remove_file(self.dir.join(name)) {
                Ok(()) => had = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {name}")),
            }
        }
        Ok(had)
    }

    fn keep_current_key(&self) -> anyhow::Result<()> {
        let (Ok(private), Ok(public)) = (
            std::fs::read(self.dir.join("key.pem")),
            std::fs::read(self.dir.join("key.pub.pem")),
        ) else {
            return Ok(());
        };
        let old = self.dir.join("keys");
        if !old.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&old)?;
        }
        let fp = p0_core::seal::key_fingerprint(&public)?;
        let name: String = fp.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        write_private(&old.join(format!("{name}.pem")), &private)?;
        // Keys older than any grant sealed to them go.
        let cutoff = std::time::SystemTime::now()
            - std::time::Duration::from_secs(KEEP_OLD_KEYS_HOURS * 3600);
        for e in std::fs::read_dir(&old)?.flatten() {
            if e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff)
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    /// Every key that may open a grant: the current one first, then those replaced by later
    /// logins, newest first.
    pub fn keys(&self) -> Vec<SecretBytes> {
        let mut keys: Vec<SecretBytes> = std::fs::read(self.dir.join("key.pem"))
            .ok()
            .map(SecretBytes::new)
            .into_iter()
            .collect();
        let mut old: Vec<(std::time::SystemTime, PathBuf)> =
            std::fs::read_dir(self.dir.join("keys"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .collect();
        old.sort_by_key(|o| std::cmp::Reverse(o.0));
        keys.extend(
            old.into_iter()
                .filter_map(|(_, p)| std::fs::read(p).ok().map(SecretBytes::new)),
        );
        keys
    }

    /// Saves a JSON document, 0600.
    pub fn save_json<T: serde::Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        write_private(&self.dir.join(name), &serde_json::to_vec(value)?)
    }

    /// Reads a JSON document.
    pub fn load_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> anyhow::Result<T> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.dir.join(name),
        )?)?)
    }

    /// The saved login: server URL, token, private key, public key.
    pub fn load(&self) -> anyhow::Result<(String, Token, SecretBytes, String)> {
        let read = |name: &str| std::fs::read(self.dir.join(name));
        let (Ok(server), Ok(token), Ok(key), Ok(public)) = (
            read("server"),
            read("token"),
            read("key.pem"),
            read("key.pub.pem"),
        ) else {
            bail!("not logged in: run `p0 login`");
        };
        Ok((
            String::from_utf8(server)?.trim().to_string(),
            Token::new(String::from_utf8(token)?.trim().to_string()),
            SecretBytes::new(key),
            String::from_utf8(public)?,
        ))
    }
}
