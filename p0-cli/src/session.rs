//! The CLI's local state: server URL, key pair and ID token, under the user's config dir
//! (`$P0_CONFIG_DIR`, else `$XDG_CONFIG_HOME/p0`, else `~/.config/p0`), files mode 0600.

use anyhow::{bail, Context};
use p0_core::{KeyPair, SecretBytes, Token};
use std::path::{Path, PathBuf};

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
            None => match std::env::var_os("XDG_CONFIG_HOME") {
                Some(x) => PathBuf::from(x).join("p0"),
                None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
                    .join(".config/p0"),
            },
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

    /// Makes a fresh key pair and stores it.
    pub fn new_key(&self) -> anyhow::Result<KeyPair> {
        let kp = KeyPair::generate()?;
        write_private(&self.dir.join("key.pem"), kp.private_pem.expose_secret())?;
        write_private(&self.dir.join("key.pub.pem"), kp.public_pem.as_bytes())?;
        Ok(kp)
    }

    /// Saves the login.
    pub fn save_login(&self, server: &str, token: &Token) -> anyhow::Result<()> {
        write_private(&self.dir.join("token"), token.expose_secret().as_bytes())?;
        write_private(&self.dir.join("server"), server.as_bytes())?;
        Ok(())
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
