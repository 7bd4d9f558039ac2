//! The arguments `p0 psql`, `p0 mysql`, `p0 exec` and `p0 request` share, and the split of a
//! database client's command line into p0's flags and the client's own.

use anyhow::{bail, Context};

#[derive(Debug, clap::Args)]
pub struct Common {
    /// The resource, e.g. `pg/prod`.
    #[arg(short = 'd', long = "resource", default_value = "")]
    pub resource: String,
    /// Why you need access.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// How long (e.g. 15m, 1h).
    #[arg(long, default_value = "15m")]
    pub duration: String,
    /// Ask for an existing role instead of a query's privileges.
    #[arg(long)]
    pub role: Option<String>,
    /// Return at once if approval is needed (exit 4).
    #[arg(long)]
    pub no_wait: bool,
    /// Pick up an earlier request by id (e.g. after `--no-wait` and an approval) instead of
    /// making a new one.
    #[arg(long, value_name = "REQUEST_ID")]
    pub resume: Option<String>,
    /// Longest wait for approval.
    #[arg(long, default_value = "30m")]
    pub timeout: String,
    /// Make a new request even when a live lease of yours already covers the query.
    #[arg(long)]
    pub new: bool,
}

/// Which client flags name the resource and carry SQL.
pub struct ClientFlags {
    resource: &'static [&'static str],
    sql: &'static [&'static str],
    file: &'static [&'static str],
}

pub const PSQL: ClientFlags = ClientFlags {
    resource: &["-d", "--dbname", "--resource"],
    sql: &["-c", "--command"],
    file: &["-f", "--file"],
};
pub const MYSQL: ClientFlags = ClientFlags {
    resource: &["-D", "--database", "--resource"],
    sql: &["-e", "--execute"],
    file: &[],
};

/// Splits `p0 psql` arguments into ours and psql's.
pub fn split_psql_args(args: &[String]) -> anyhow::Result<(Common, Option<String>, Vec<String>)> {
    split_client_args(args, &PSQL)
}

/// Splits a client's arguments into ours and the client's.
pub fn split_client_args(
    args: &[String],
    flags: &ClientFlags,
) -> anyhow::Result<(Common, Option<String>, Vec<String>)> {
    let mut common = Common {
        resource: String::new(),
        reason: String::new(),
        duration: "15m".into(),
        role: None,
        no_wait: false,
        timeout: "30m".into(),
        resume: None,
        new: false,
    };
    let mut sql: Vec<String> = Vec::new();
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value")),
            }
        };
        match flag {
            f if flags.resource.contains(&f) => common.resource = value(flag)?,
            "--reason" => common.reason = value(flag)?,
            "--duration" => common.duration = value(flag)?,
            "--role" => common.role = Some(value(flag)?),
            "--timeout" => common.timeout = value(flag)?,
            "--resume" => common.resume = Some(value(flag)?),
            "--no-wait" => common.no_wait = true,
            "--new" => common.new = true,
            f if flags.sql.contains(&f) => {
                let v = value(flag)?;
                pass.push(flags.sql[0].into());
                pass.push(v.clone());
                sql.push(v);
            }
            f if flags.file.contains(&f) => {
                let v = value(flag)?;
                let text = std::fs::read_to_string(&v).with_context(|| format!("reading `{v}`"))?;
                pass.push("-f".into());
                pass.push(v);
                sql.push(text);
            }
            _ => pass.push(a.clone()),
        }
    }
    if common.resource.is_empty() && common.resume.is_none() {
        bail!("name the resource with {} RESOURCE", flags.resource[0]);
    }
    let sql = (!sql.is_empty()).then(|| sql.join(";\n"));
    Ok((common, sql, pass))
}

/// Client options that would let a server read local files.
pub fn refuse_local_files(pass: &[String]) -> anyhow::Result<()> {
    if let Some(a) = pass.iter().find(|a| {
        a.contains("local-infile") || a.contains("local_infile") || a.contains("load-data-local")
    }) {
        bail!("`{a}` is not allowed: it would let the database server read your files");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_arguments_are_split() {
        let args: Vec<String> = [
            "-d",
            "pg/prod",
            "-c",
            "select 1",
            "--reason=reports",
            "-X",
            "--csv",
            "--duration",
            "5m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (c, sql, pass) = split_psql_args(&args).unwrap();
        assert_eq!(c.resource, "pg/prod");
        assert_eq!(c.reason, "reports");
        assert_eq!(c.duration, "5m");
        assert_eq!(sql.as_deref(), Some("select 1"));
        assert_eq!(pass, vec!["-c", "select 1", "-X", "--csv"]);
        assert!(split_psql_args(&["-c".into(), "x".into()]).is_err());
    }
}
