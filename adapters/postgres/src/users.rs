//! `UserRepository` on PostgreSQL.

use crate::cluster::{with_conn, Cluster, DbError};
use crate::rows;
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{StoreResult, UserRepository};
use domain::StoreError;
use std::sync::Arc;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

const INSERT: &str = "INSERT INTO users (id, email, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
                      ON CONFLICT DO NOTHING";
const EXISTS: &str = "SELECT 1 FROM users WHERE id = $1";
const GET: &str = "SELECT id, email, name, created_at FROM users WHERE id = $1";
const TOKEN: &str = "SELECT token_hash FROM users WHERE id = $1";
const UPDATE: &str = "UPDATE users SET email = $2, name = $3 WHERE id = $1";
const DELETE: &str = "DELETE FROM users WHERE id = $1";
const LIST: &str = "SELECT id, email, name, created_at FROM users WHERE id > $1 ORDER BY id LIMIT $2";

pub(crate) struct PgUsers(pub(crate) Arc<Cluster>);

fn email_conflict(e: tokio_postgres::Error) -> DbError {
    match rows::violated(&e, &SqlState::UNIQUE_VIOLATION) {
        Some("users_email_key") => StoreError::Conflict { field: "email".into() }.into(),
        _ => e.into(),
    }
}

#[async_trait]
impl UserRepository for PgUsers {
    async fn insert(&self, user: &User, token: &TokenHash) -> StoreResult<()> {
        with_conn!(self.0, "users.insert", |c, _retries| {
            let st = c.prepare(INSERT).await?;
            let id = user.id.as_uuid();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                &id,
                &user.email.as_str(),
                &user.name.as_str(),
                &token.as_bytes().as_slice(),
                &user.created_at.as_datetime(),
            ];
            // ON CONFLICT DO NOTHING covers both the id and the email: 0 rows is either a repeat
            // of this insert (same id: done) or another user's email.
            if c.client.execute(&st, &params).await? == 1 {
                return Ok(());
            }
            let st = c.prepare(EXISTS).await?;
            match c.client.query_opt(&st, &[&id]).await? {
                Some(_) => Ok(()),
                None => Err(StoreError::Conflict { field: "email".into() }.into()),
            }
        })
    }

    async fn get(&self, id: UserId) -> StoreResult<Option<User>> {
        with_conn!(self.0, "users.get", |c, _retries| {
            let st = c.prepare(GET).await?;
            Ok(c.client.query_opt(&st, &[&id.as_uuid()]).await?.as_ref().map(rows::user))
        })
    }

    async fn token_hash(&self, id: UserId) -> StoreResult<Option<TokenHash>> {
        with_conn!(self.0, "users.token_hash", |c, _retries| {
            let st = c.prepare(TOKEN).await?;
            c.client.query_opt(&st, &[&id.as_uuid()]).await?.as_ref().map(rows::token_hash).transpose()
        })
    }

    async fn update(&self, user: &User) -> StoreResult<bool> {
        with_conn!(self.0, "users.update", |c, _retries| {
            let st = c.prepare(UPDATE).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&user.id.as_uuid(), &user.email.as_str(), &user.name.as_str()];
            Ok(c.client.execute(&st, &params).await.map_err(email_conflict)? == 1)
        })
    }

    async fn delete(&self, id: UserId) -> StoreResult<bool> {
        // Cart lines go with the user (ON DELETE CASCADE); orders stay. After a failed attempt
        // that may have committed, finding nothing to delete means this call deleted it.
        with_conn!(self.0, "users.delete", |c, retries| {
            let st = c.prepare(DELETE).await?;
            Ok(c.client.execute(&st, &[&id.as_uuid()]).await? == 1 || retries > 0)
        })
    }

    async fn list(&self, page: PageRequest) -> StoreResult<Vec<User>> {
        with_conn!(self.0, "users.list", |c, _retries| {
            let st = c.prepare(LIST).await?;
            let after = page.after.unwrap_or(Uuid::nil());
            Ok(c.client.query(&st, &[&after, &i64::from(page.limit)]).await?.iter().map(rows::user).collect())
        })
    }
}
