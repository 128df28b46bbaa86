//! [`Given`]: a configuration value that remembers whether the document wrote it.
//!
//! `GET /v1/config` must answer with what was loaded, key for key (DESIGN D22): a client such as
//! the Kubernetes operator compares the answer with the file it wrote, so a section the file
//! left out must stay out (no `logger: {}`), and one it wrote empty (`backup-routines: {}`,
//! `set-list: []`, `disabled: false`) must come back. Fields whose default is a value rather
//! than an `Option` (sections, lists, flags) are wrapped in `Given` for that: it reads and
//! writes exactly as the value it holds, and dereferences to it, so code uses it as the value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// A value plus whether the configuration document wrote it. Use it with
/// `#[serde(default, skip_serializing_if = "Given::is_absent")]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Given<T> {
    value: T,
    given: bool,
}

impl<T: Default + PartialEq> Given<T> {
    /// Neither written by the document nor changed since: leave it out when writing.
    pub fn is_absent(&self) -> bool {
        !self.given && self.value == T::default()
    }
}

impl<T> Given<T> {
    /// A value the document writes (as if it had been read from one).
    pub fn new(value: T) -> Self {
        Self { value, given: true }
    }

    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> From<T> for Given<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<A, T: FromIterator<A>> FromIterator<A> for Given<T> {
    fn from_iter<I: IntoIterator<Item = A>>(iter: I) -> Self {
        Self::new(T::from_iter(iter))
    }
}

impl<T> Deref for Given<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Given<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Given<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: Serialize> Serialize for Given<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self::new)
    }
}

impl<'a, T> IntoIterator for &'a Given<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&self.value).into_iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Given<T>
where
    &'a mut T: IntoIterator,
{
    type Item = <&'a mut T as IntoIterator>::Item;
    type IntoIter = <&'a mut T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&mut self.value).into_iter()
    }
}

impl<T: utoipa::PartialSchema> utoipa::PartialSchema for Given<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        T::schema()
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for Given<T> {
    fn name() -> Cow<'static, str> {
        T::name()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        T::schemas(schemas)
    }
}

/// An enum value that remembers how the document spelled it: values are read case-insensitively
/// (`tcp`, `TCP`), and written back as they were read, so the answer matches the file.
#[derive(Clone, Copy, Eq)]
pub struct Spelled<E> {
    value: E,
    spelling: Option<&'static str>,
}

impl<E> Spelled<E> {
    pub fn new(value: E) -> Self {
        Self {
            value,
            spelling: None,
        }
    }
}

impl<E> From<E> for Spelled<E> {
    fn from(value: E) -> Self {
        Self::new(value)
    }
}

impl<E: PartialEq> PartialEq for Spelled<E> {
    /// The same value however it is spelled.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<E> Deref for Spelled<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.value
    }
}

impl<E: fmt::Debug> fmt::Debug for Spelled<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<E: Serialize> Serialize for Spelled<E> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.spelling {
            Some(text) => s.serialize_str(text),
            None => self.value.serialize(s),
        }
    }
}

impl<'de, E: std::str::FromStr<Err = String>> Deserialize<'de> for Spelled<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let value = text.parse().map_err(serde::de::Error::custom)?;
        // Interned so the type stays `Copy`; the spellings of a config are few and small.
        Ok(Self {
            value,
            spelling: Some(intern(text)),
        })
    }
}

/// A `'static` copy of a spelling, each distinct one leaked once.
fn intern(text: String) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = seen.get(text.as_str()) {
        return s;
    }
    let s: &'static str = Box::leak(text.into_boxed_str());
    seen.insert(s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Default)]
    #[serde(rename_all = "kebab-case")]
    struct Doc {
        #[serde(default, skip_serializing_if = "Given::is_absent")]
        list: Given<Vec<u32>>,
        #[serde(default, skip_serializing_if = "Given::is_absent")]
        flag: Given<bool>,
    }

    fn round_trip(json: &str) -> String {
        let d: Doc = serde_json::from_str(json).unwrap();
        serde_json::to_string(&d).unwrap()
    }

    #[test]
    fn written_values_come_back_even_when_default() {
        assert_eq!(round_trip("{}"), "{}");
        assert_eq!(round_trip(r#"{"list":[]}"#), r#"{"list":[]}"#);
        assert_eq!(round_trip(r#"{"flag":false}"#), r#"{"flag":false}"#);
        assert_eq!(
            round_trip(r#"{"list":[1],"flag":true}"#),
            r#"{"list":[1],"flag":true}"#
        );
    }

    #[test]
    fn values_changed_in_code_are_written() {
        let mut d = Doc::default();
        d.list.push(7);
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"list":[7]}"#);
        assert!(!*d.flag);
    }
}
