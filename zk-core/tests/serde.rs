//! The `serde` feature: Stat, Acl (with its Id and Perms) and SessionId survive a round trip
//! through JSON, and SessionId is written as its text form.
#![cfg(feature = "serde")]

use zk_core::proto::{Acl, Id, Perms, Stat};
use zk_core::SessionId;

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let json = serde_json::to_string(value).expect("serialize");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("deserialize {json}: {e}"))
}

#[test]
fn stat_round_trips() {
    let stat = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 3,
        mtime: 4,
        version: 5,
        cversion: 6,
        aversion: 7,
        ephemeral_owner: -8,
        data_length: 9,
        num_children: 10,
        pzxid: i64::MAX,
    };
    assert_eq!(round_trip(&stat), stat);
}

#[test]
fn acl_round_trips() {
    let acl = Acl::new(
        Perms(31),
        Id {
            scheme: "digest".into(),
            id: "user:hash=".into(),
        },
    );
    assert_eq!(round_trip(&acl), acl);
    let json = serde_json::to_string(&acl).expect("serialize");
    assert_eq!(
        json,
        r#"{"perms":31,"id":{"scheme":"digest","id":"user:hash="}}"#
    );
}

#[test]
fn session_id_is_its_text_form() {
    let text = "0x0100000a3c5e0001:00112233445566778899aabbccddeeff";
    let id: SessionId = text.parse().expect("parse");
    assert_eq!(
        serde_json::to_string(&id).expect("serialize"),
        format!("\"{text}\"")
    );
    assert_eq!(round_trip(&id), id);
    let bad = serde_json::from_str::<SessionId>("\"0x01:zz\"");
    assert!(bad.is_err(), "{bad:?}");
}
