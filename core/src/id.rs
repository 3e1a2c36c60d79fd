//! Fixed-size identifiers: blob, pack, index and snapshot ids (32 bytes),
//! space and session ids (16 bytes).

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

macro_rules! fixed_id {
    ($name:ident, $len:expr, $what:expr) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn random() -> Self {
                let mut b = [0u8; $len];
                rand::rngs::OsRng.fill_bytes(&mut b);
                Self(b)
            }

            pub fn to_hex(&self) -> String {
                let mut buf = [0u8; 2 * $len];
                self.hex_into(&mut buf).to_owned()
            }

            /// The hex form in a caller's buffer: no allocation.
            fn hex_into<'b>(&self, buf: &'b mut [u8; 2 * $len]) -> &'b str {
                hex::encode_to_slice(self.0, buf).expect("the buffer fits");
                std::str::from_utf8(buf).expect("hex is ASCII")
            }

            pub fn from_slice(b: &[u8]) -> Option<Self> {
                Some(Self(b.try_into().ok()?))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.hex_into(&mut [0u8; 2 * $len]))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                let mut b = [0u8; $len];
                hex::decode_to_slice(s, &mut b).map_err(|_| {
                    crate::Error::Invalid(format!(
                        "`{s}` is not a {} ({} hex digits)",
                        $what,
                        2 * $len
                    ))
                })?;
                Ok(Self(b))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.hex_into(&mut [0u8; 2 * $len]))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_id!(BlobId, 32, "blob id");
fixed_id!(PackId, 32, "pack id");
fixed_id!(FileId, 32, "object id");
fixed_id!(SpaceId, 16, "space id");
fixed_id!(SessionId, 16, "session id");
fixed_id!(RepoId, 16, "repository id");

/// Snapshot ids are object ids.
pub type SnapshotId = FileId;
/// Index file ids are object ids.
pub type IndexId = FileId;
