//! A loopback relay between the database client and a sealed target without verified TLS:
//! it reads the server's side of the authentication exchange and cuts the connection, before
//! the client can answer, if the server asks for the password in a form it could read
//! (PostgreSQL cleartext or MD5, a MySQL cleartext or server-key plugin). libpq 16's
//! `require_auth` does the same for psql alone; the relay holds for every client p0 starts
//! (`p0 exec` runs any program), whatever its version. After authentication it only moves
//! bytes.

use p0_core::Engine;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running relay; refusals are kept for the CLI to report after the client exits.
#[derive(Debug)]
pub struct Relay {
    /// Loopback port the client connects to.
    pub port: u16,
    refused: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts relaying loopback connections to `host:port`.
    pub async fn start(engine: Engine, host: String, port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?.port();
        let refused = Arc::new(Mutex::new(None));
        let seen = refused.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (host, seen) = (host.clone(), seen.clone());
                tokio::spawn(async move {
                    if let Err(Refused(why)) = relay(engine, client, &host, port).await {
                        if let Ok(mut slot) = seen.lock() {
                            slot.get_or_insert(why);
                        }
                    }
                });
            }
        });
        Ok(Self {
            port: local,
            refused,
            task,
        })
    }

    /// Why a connection was cut, if one was.
    pub fn refusal(&self) -> Option<String> {
        self.refused.lock().ok().and_then(|s| s.clone())
    }
}

/// The server asked for something the client must not answer.
struct Refused(String);

impl From<std::io::Error> for Refused {
    fn from(_: std::io::Error) -> Self {
        // A broken connection is not a refusal; the client reports it itself.
        Refused(String::new())
    }
}

async fn relay(
    engine: Engine,
    mut client: TcpStream,
    host: &str,
    port: u16,
) -> Result<(), Refused> {
    let mut server = TcpStream::connect((host, port)).await?;
    let outcome = match engine {
        Engine::MySql => mysql_auth(&mut client, &mut server).await,
        _ => pg_auth(&mut client, &mut server).await,
    };
    if let Err(Refused(why)) = outcome {
        let _ = client.shutdown().await;
        let _ = server.shutdown().await;
        return Err(Refused(if why.is_empty() {
            why
        } else {
            format!("the database at {host}:{port} {why}; the client was cut off before it could answer")
        }));
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    Ok(())
}

/// Longest message read while authenticating.
const MAX_AUTH_MESSAGE: usize = 64 * 1024;

async fn read_exact_vec(s: &mut TcpStream, n: usize) -> Result<Vec<u8>, Refused> {
    if n > MAX_AUTH_MESSAGE {
        return Err(Refused("sent an oversized authentication message".into()));
    }
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// PostgreSQL: startup from the client (answering TLS/GSS requests with "no"), then the
/// server's authentication requests until AuthenticationOk: only SASL with SCRAM-SHA-256.
async fn pg_auth(client: &mut TcpStream, server: &mut TcpStream) -> Result<(), Refused> {
    loop {
        let len = client.read_u32().await? as usize;
        if len < 8 {
            return Err(Refused(String::new()));
        }
        let body = read_exact_vec(client, len - 4).await?;
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == 80_877_103 || code == 80_877_104 {
            client.write_all(b"N").await?;
            continue;
        }
        server.write_all(&(len as u32).to_be_bytes()).await?;
        server.write_all(&body).await?;
        if code == 80_877_102 {
            return Ok(()); // a cancel request: no authentication
        }
        break;
    }
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    // The client's answers go through as they come: it answers only what reached it.
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut authenticated = false;
        loop {
            let kind = server_read.read_u8().await?;
            let len = server_read.read_u32().await? as usize;
            if len < 4 {
                return Err(Refused("sent a malformed message".into()));
            }
            let body = {
                if len - 4 > MAX_AUTH_MESSAGE {
                    return Err(Refused("sent an oversized authentication message".into()));
                }
                let mut b = vec![0u8; len - 4];
                server_read.read_exact(&mut b).await?;
                b
            };
            // An error ends the exchange: pass it on, then cut (nothing may follow it).
            if kind == b'E' {
                client_write.write_u8(kind).await?;
                client_write.write_u32(len as u32).await?;
                client_write.write_all(&body).await?;
                return Err(Refused(String::new()));
            }
            // Authentication ends at ReadyForQuery, not at AuthenticationOk: some drivers
            // (pgx) still answer a password request that follows an AuthenticationOk.
            let done = kind == b'Z';
            if kind == b'R' && authenticated {
                return Err(Refused("asked for a password after authenticating".into()));
            }
            if kind == b'R' {
                let code = body
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(u32::MAX);
                match code {
                    0 => authenticated = true,
                    10 => {
                        let scram = body[4..].split(|b| *b == 0).any(|m| m == b"SCRAM-SHA-256");
                        if !scram {
                            return Err(Refused("offered no SCRAM-SHA-256".into()));
                        }
                    }
                    11 | 12 => {}
                    3 => return Err(Refused("asked for the password in cleartext".into())),
                    5 => return Err(Refused("asked for an MD5 password hash".into())),
                    other => {
                        return Err(Refused(format!(
                            "asked for authentication method {other}, not SCRAM-SHA-256"
                        )))
                    }
                }
            }
            client_write.write_u8(kind).await?;
            client_write.write_u32(len as u32).await?;
            client_write.write_all(&body).await?;
            if done {
                return Ok(());
            }
        }
    };
    tokio::select! {
        r = downstream => r,
        _ = upstream => Err(Refused(String::new())),
    }
}

/// Client authentication plugins that never give the server the password or anything it
/// could turn back into one.
const MYSQL_PLUGINS: &[&[u8]] = &[
    b"mysql_native_password",
    b"client_ed25519",
    b"parsec",
    b"caching_sha2_password",
];

fn mysql_plugin_ok(name: &[u8]) -> Result<(), Refused> {
    if MYSQL_PLUGINS.contains(&name) {
        Ok(())
    } else {
        Err(Refused(format!(
            "asked for authentication plugin `{}`, which sends the password where the server can read it",
            String::from_utf8_lossy(name)
        )))
    }
}

/// AuthMoreData that starts caching_sha2's full authentication or carries a public key.
fn full_auth(body: &[u8]) -> bool {
    let data = body.strip_prefix(&[0x01]).unwrap_or(body);
    data == [0x04] || data.windows(10).any(|w| w == b"-----BEGIN")
}

async fn mysql_packet(s: &mut (impl AsyncReadExt + Unpin)) -> Result<(u8, Vec<u8>), Refused> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    if len > MAX_AUTH_MESSAGE {
        return Err(Refused("sent an oversized authentication packet".into()));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok((head[3], body))
}

async fn mysql_write(
    s: &mut (impl AsyncWriteExt + Unpin),
    seq: u8,
    body: &[u8],
) -> Result<(), Refused> {
    let len = (body.len() as u32).to_le_bytes();
    s.write_all(&[len[0], len[1], len[2], seq]).await?;
    s.write_all(body).await?;
    Ok(())
}

/// The plugin a HandshakeV10 packet names, read strictly: a 21-byte scramble (8 + 12 + NUL),
/// then one NUL-terminated name that ends the packet. Clients read the name at offsets of
/// their own, so any other layout is refused rather than guessed at.
fn handshake_plugin(body: &[u8]) -> Option<&[u8]> {
    // protocol(1) version\0 id(4) scramble1(8) filler(1) caps(2) charset(1) status(2) caps(2)
    // scramble_len(1) reserved(10) scramble2(13) plugin\0
    let rest = body.get(1..)?;
    let nul = rest.iter().position(|b| *b == 0)?;
    let rest = rest.get(nul + 1..)?;
    let fixed = rest.get(4 + 8 + 1 + 2 + 1 + 2 + 2..)?;
    if *fixed.first()? != 21 {
        return None;
    }
    let name = fixed.get(1 + 10 + 13..)?;
    let (last, name) = name.split_last()?;
    (*last == 0 && !name.is_empty() && !name.contains(&0)).then_some(name)
}

/// MySQL: the server speaks first; its handshake and every authentication packet are checked
/// before the client sees them.
async fn mysql_auth(client: &mut TcpStream, server: &mut TcpStream) -> Result<(), Refused> {
    let (seq, hello) = mysql_packet(server).await?;
    if hello.first() == Some(&10) {
        match handshake_plugin(&hello) {
            Some(plugin) => mysql_plugin_ok(plugin)?,
            None => {
                return Err(Refused(
                    "sent a handshake whose plugin cannot be read".into(),
                ))
            }
        }
    }
    mysql_write(client, seq, &hello).await?;
    if hello.first() != Some(&10) {
        return Ok(());
    }
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        loop {
            let (seq, body) = mysql_packet(&mut server_read).await?;
            let done = match body.first() {
                Some(0x00) | Some(0xFF) => true,
                Some(0xFE) => {
                    let name = body[1..].split(|b| *b == 0).next().unwrap_or_default();
                    mysql_plugin_ok(name)?;
                    false
                }
                // caching_sha2_password's "perform full authentication" (clients strip an
                // optional 0x01 first), or a public key of the server's choosing: the password
                // would follow, in cleartext or under that key.
                Some(_) if full_auth(&body) => {
                    return Err(Refused(
                        "asked for full authentication, which sends the password where the server can read it".into(),
                    ))
                }
                _ => false,
            };
            mysql_write(&mut client_write, seq, &body).await?;
            if done {
                return Ok(());
            }
        }
    };
    tokio::select! {
        r = downstream => r,
        _ = upstream => Err(Refused(String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(scramble_len: u8, part2: &[u8], plugin: &[u8]) -> Vec<u8> {
        let mut h = vec![10];
        h.extend_from_slice(b"5.7.99\0");
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(b"abcdefgh");
        h.push(0);
        h.extend_from_slice(&[0xff, 0xff, 0x21, 0x02, 0x00, 0xff, 0xff]);
        h.push(scramble_len);
        h.extend_from_slice(&[0; 10]);
        h.extend_from_slice(part2);
        h.extend_from_slice(plugin);
        h
    }

    #[test]
    fn only_a_plainly_named_plugin_is_read() {
        let ok = hello(21, b"ijklmnopqrst\0", b"mysql_native_password\0");
        assert_eq!(handshake_plugin(&ok), Some(&b"mysql_native_password"[..]));
        // The name split across the scramble, as a client reading at its own offset sees it.
        let split = hello(0, b"ear_password\0", b"");
        assert_eq!(handshake_plugin(&split), None);
        assert_eq!(handshake_plugin(&hello(21, b"ijklmnopqrst\0", b"")), None);
        assert_eq!(
            handshake_plugin(&hello(21, b"ijklmnopqrst\0", b"x\0y\0")),
            None
        );
    }

    #[test]
    fn full_authentication_is_recognised_with_or_without_its_prefix() {
        assert!(full_auth(&[0x01, 0x04]));
        assert!(full_auth(&[0x04]));
        assert!(full_auth(b"\x01-----BEGIN PUBLIC KEY-----"));
        assert!(!full_auth(&[0x01, 0x03]));
    }
}
