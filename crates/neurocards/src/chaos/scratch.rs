//! The soak's own PostgreSQL database and role, made on the operator's server and dropped
//! afterwards. The role's password is fresh and long, so the soak can look for it in logs.

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use url::Url;

pub struct Scratch {
    admin_url: String,
    pub name: String,
    pub password: String,
    /// As the soak itself reads the database: straight to the server, never cut.
    pub direct_url: Url,
}

impl Scratch {
    pub async fn create(admin_url: &str) -> anyhow::Result<Scratch> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("nc_chaos_{}", &tag[..12]);
        let password = format!("chaos-db-{}", &tag[12..]);
        let mut admin = connect(admin_url).await?;
        for statement in [
            format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
            format!("CREATE DATABASE {name} OWNER {name}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .context(
                    "creating the soak's database (the URL's user needs CREATEDB and CREATEROLE)",
                )?;
        }
        let _ = admin.close().await;
        let mut direct_url = Url::parse(admin_url).context("the PostgreSQL URL")?;
        direct_url
            .set_username(&name)
            .map_err(|()| anyhow::anyhow!("the PostgreSQL URL takes no user name"))?;
        direct_url
            .set_password(Some(&password))
            .map_err(|()| anyhow::anyhow!("the PostgreSQL URL takes no password"))?;
        direct_url.set_path(&name);
        Ok(Scratch {
            admin_url: admin_url.to_owned(),
            name,
            password,
            direct_url,
        })
    }

    /// The same database through `host:port` (the proxy that cuts it).
    pub fn url_through(&self, port: u16) -> anyhow::Result<String> {
        let mut url = self.direct_url.clone();
        url.set_host(Some("127.0.0.1")).context("a proxied URL")?;
        url.set_port(Some(port))
            .map_err(|()| anyhow::anyhow!("the PostgreSQL URL takes no port"))?;
        Ok(url.to_string())
    }

    pub async fn drop_all(self) -> anyhow::Result<()> {
        let mut admin = connect(&self.admin_url).await?;
        for statement in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {}", self.name),
        ] {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .context("dropping the soak's database")?;
        }
        let _ = admin.close().await;
        Ok(())
    }
}

async fn connect(admin_url: &str) -> anyhow::Result<PgConnection> {
    let shown = crate::config::DatabaseUrl::parse(admin_url)
        .map(|url| url.redacted())
        .unwrap_or_else(|_| "an unparsable URL".to_owned());
    PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {shown}"))
}
