//! The UserRepository contract: what every user store must do. An adapter's test file runs each
//! case against a fresh store of its real server with `user_contract!(fresh)`, where `fresh` is an
//! async fn returning something that derefs to a `dyn UserRepository` on an empty store.

use domain::models::*;
use domain::ports::{Clock, SystemClock, UserRepository};
use domain::StoreError;
use uuid::Uuid;

#[macro_export]
macro_rules! user_contract {
    ($fresh:path) => {
        $crate::user_contract!(@cases $fresh;
            insert_get_and_token_round_trip,
            repeating_an_insert_is_a_no_op,
            a_taken_email_is_a_conflict_on_email_and_writes_nothing,
            update_replaces_email_and_name_and_reports_unknown_users,
            delete_removes_the_user_once,
            list_pages_in_ascending_id_order,
            text_is_stored_verbatim_and_timestamps_keep_milliseconds
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let users = $fresh().await;
                $crate::users::$case(&*users).await;
            }
        )*
    };
}

/// A new user with this email (id ascending with each call: UUID v7).
pub fn user(email: &str) -> User {
    User {
        id: UserId::from_uuid(Uuid::now_v7()),
        email: Email::parse(email).unwrap(),
        name: UserName::parse("Ann").unwrap(),
        created_at: SystemClock.now(),
    }
}

pub fn token() -> TokenHash {
    ApiToken::generate().hash()
}

#[track_caller]
fn assert_email_conflict(e: StoreError) {
    assert!(matches!(e, StoreError::Conflict { ref field } if field == "email"), "{e:?}");
}

pub async fn insert_get_and_token_round_trip(users: &dyn UserRepository) {
    let u = user("ann@example.com");
    let t = token();
    users.insert(&u, &t).await.unwrap();
    assert_eq!(users.get(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(users.token_hash(u.id).await.unwrap(), Some(t));
    let unknown = user("nobody@example.com").id;
    assert_eq!(users.get(unknown).await.unwrap(), None);
    assert_eq!(users.token_hash(unknown).await.unwrap(), None);
}

pub async fn repeating_an_insert_is_a_no_op(users: &dyn UserRepository) {
    let u = user("ann@example.com");
    let t = token();
    users.insert(&u, &t).await.unwrap();
    users.insert(&u, &t).await.unwrap();
    assert_eq!(users.list(PageRequest::first(10)).await.unwrap(), vec![u]);
}

pub async fn a_taken_email_is_a_conflict_on_email_and_writes_nothing(users: &dyn UserRepository) {
    let ann = user("ann@example.com");
    users.insert(&ann, &token()).await.unwrap();
    assert_email_conflict(users.insert(&user("ann@example.com"), &token()).await.unwrap_err());
    assert_eq!(users.list(PageRequest::first(10)).await.unwrap(), vec![ann]);

    let mut bob = user("bob@example.com");
    users.insert(&bob, &token()).await.unwrap();
    bob.email = Email::parse("ann@example.com").unwrap();
    assert_email_conflict(users.update(&bob).await.unwrap_err());
    assert_eq!(users.get(bob.id).await.unwrap().unwrap().email.as_str(), "bob@example.com");
}

pub async fn update_replaces_email_and_name_and_reports_unknown_users(users: &dyn UserRepository) {
    let mut u = user("ann@example.com");
    users.insert(&u, &token()).await.unwrap();
    u.email = Email::parse("ann@example.org").unwrap();
    u.name = UserName::parse("Anna Ærøskøbing 🛒").unwrap();
    assert!(users.update(&u).await.unwrap());
    assert!(users.update(&u).await.unwrap(), "same values again: still found");
    assert_eq!(users.get(u.id).await.unwrap(), Some(u));
    assert!(!users.update(&user("x@example.com")).await.unwrap());
}

pub async fn delete_removes_the_user_once(users: &dyn UserRepository) {
    let (a, b) = (user("ann@example.com"), user("bob@example.com"));
    users.insert(&a, &token()).await.unwrap();
    users.insert(&b, &token()).await.unwrap();
    assert!(users.delete(a.id).await.unwrap());
    assert!(!users.delete(a.id).await.unwrap());
    assert_eq!(users.get(a.id).await.unwrap(), None);
    assert_eq!(users.token_hash(a.id).await.unwrap(), None);
    assert_eq!(users.list(PageRequest::first(10)).await.unwrap(), vec![b]);
    // The email is free again.
    users.insert(&user("ann@example.com"), &token()).await.unwrap();
}

pub async fn list_pages_in_ascending_id_order(users: &dyn UserRepository) {
    let mut all = Vec::new();
    for i in 0..7 {
        let u = user(&format!("u{i}@example.com"));
        users.insert(&u, &token()).await.unwrap();
        all.push(u);
    }
    all.sort_by_key(|u| u.id);
    let first = users.list(PageRequest::first(3)).await.unwrap();
    assert_eq!(first, all[..3]);
    let second = users.list(PageRequest { limit: 3, after: Some(first[2].id.as_uuid()) }).await.unwrap();
    assert_eq!(second, all[3..6]);
    let third = users.list(PageRequest { limit: 3, after: Some(second[2].id.as_uuid()) }).await.unwrap();
    assert_eq!(third, all[6..]);
}

pub async fn text_is_stored_verbatim_and_timestamps_keep_milliseconds(users: &dyn UserRepository) {
    let mut u = user("o'brien+x@example.com");
    u.name = UserName::parse("Robert'); DROP TABLE users;-- \\ % _ 名前 ❤").unwrap();
    u.created_at = Timestamp::from_millis(1_700_000_000_123).unwrap();
    users.insert(&u, &token()).await.unwrap();
    let back = users.get(u.id).await.unwrap().unwrap();
    assert_eq!(back, u);
    assert_eq!(back.created_at.millis(), 1_700_000_000_123);
}
