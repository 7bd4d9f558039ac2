//! What the stack's database holds right now: the p0 users and roles, read as its superuser.

use crate::{Stack, DATABASE};

impl Stack {
    /// The ephemeral users in the database right now.
    pub fn managed_users(&self) -> anyhow::Result<Vec<String>> {
        if let Some(m) = &self.my {
            let out = m.sql(
                "SELECT user FROM mysql.user WHERE user LIKE 'p0\\_%' AND is_role = 'N' ORDER BY 1",
            )?;
            return Ok(out
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect());
        }
        let out = self.pg.psql(DATABASE, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'p0\\_%' ESCAPE '\\' AND rolcanlogin ORDER BY 1")?;
        Ok(out
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Every p0 user or role in the database.
    pub fn managed_roles(&self) -> anyhow::Result<Vec<String>> {
        if let Some(m) = &self.my {
            let out = m.sql("SELECT user FROM mysql.user WHERE user LIKE 'p0%' ORDER BY 1")?;
            return Ok(out
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect());
        }
        let out = self.pg.psql(
            DATABASE,
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'p0%' ORDER BY 1",
        )?;
        Ok(out
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }
}
