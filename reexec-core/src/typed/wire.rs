//! The frames a typed call travels in, in a single call's file or on a pool worker's two
//! pipes; read and written by both sides.
//!
//! A frame is one tag byte, the body's length as a little-endian `u64`, and the body. A
//! call is a [`Tag::Types`] frame then a [`Tag::Input`] frame, parent to child; its answer
//! is exactly one frame back: [`Tag::Value`], [`Tag::Panic`], [`Tag::Mismatch`] or
//! [`Tag::Failed`]. Bodies are postcard. The lengths let a worker of a [`Pool`] serve one
//! call after another on the same pipes.
//!
//! [`Pool`]: crate::Pool

use std::any::{TypeId, type_name};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read};

use serde::Serialize;

/// The environment variable that carries the child's numbers of its descriptors: `CALL`,
/// a single call's file, or `INPUT,ANSWER`, a pool worker's pipes; the child removes it
/// before its entry runs. Only the numbers travel there:
/// the values go through the descriptors, whatever their size, and never show in
/// `/proc/PID/environ`.
pub(crate) const FDS_ENV: &str = "REEXEC_TYPED_FDS";

/// The length of a frame's head: the tag and the body's length.
pub(crate) const HEAD: usize = 9;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    /// The call's [`Signature`], parent to child.
    Types,
    /// The input value, parent to child.
    Input,
    /// The entry's return value, child to parent.
    Value,
    /// The entry's panic: message, file, line, column.
    Panic,
    /// The child's own [`Signature`], when the call's differs: the entry did not run.
    Mismatch,
    /// The child could not read the input, or write the value, as postcard: the message.
    Failed,
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Types => b'T',
            Tag::Input => b'I',
            Tag::Value => b'V',
            Tag::Panic => b'P',
            Tag::Mismatch => b'M',
            Tag::Failed => b'F',
        }
    }

    fn from_byte(byte: u8) -> Option<Tag> {
        [
            Tag::Types,
            Tag::Input,
            Tag::Value,
            Tag::Panic,
            Tag::Mismatch,
            Tag::Failed,
        ]
        .into_iter()
        .find(|tag| tag.byte() == byte)
    }
}

/// The types of a call, as the parent sees them or as the entry has them.
///
/// The names are for people; the fingerprint decides. It hashes the two `TypeId`s, which
/// are the same in every process of one binary — and a typed child always runs the
/// parent's own binary, `/proc/self/exe` — but differ between two types of one name (two
/// versions of a crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Signature {
    pub(crate) input: String,
    pub(crate) output: String,
    pub(crate) fingerprint: u64,
}

impl Signature {
    pub(crate) fn of<In: 'static, Out: 'static>() -> Signature {
        let mut hasher = DefaultHasher::new();
        TypeId::of::<In>().hash(&mut hasher);
        TypeId::of::<Out>().hash(&mut hasher);
        Signature {
            input: type_name::<In>().to_owned(),
            output: type_name::<Out>().to_owned(),
            fingerprint: hasher.finish(),
        }
    }

    pub(crate) fn encode(&self, tag: Tag, into: &mut Vec<u8>) -> Result<(), postcard::Error> {
        encode(
            tag,
            &(self.input.as_str(), self.output.as_str(), self.fingerprint),
            into,
        )
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Signature, postcard::Error> {
        let (input, output, fingerprint): (String, String, u64) = decode(body)?;
        Ok(Signature {
            input,
            output,
            fingerprint,
        })
    }
}

/// Appends the frame `tag` carrying `value` to `into`, serialized in place: a large value
/// is not copied once more to be framed.
pub(crate) fn encode<T: Serialize + ?Sized>(
    tag: Tag,
    value: &T,
    into: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let start = into.len();
    into.push(tag.byte());
    into.extend_from_slice(&[0; 8]);
    if let Err(error) = postcard::serialize_with_flavor(value, Append(into)) {
        into.truncate(start);
        return Err(error);
    }
    let length = (into.len() - start - HEAD) as u64;
    into[start + 1..start + HEAD].copy_from_slice(&length.to_le_bytes());
    Ok(())
}

/// A postcard flavor that appends to a `Vec` we already hold.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// `body` as a `T`, all of it: bytes left over mean the two sides disagree on the type.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, postcard::Error> {
    let (value, rest) = postcard::take_from_bytes(body)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

/// One frame read whole.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) tag: Tag,
    pub(crate) body: Vec<u8>,
}

/// Reads the next frame; `None` at end-of-file before its first byte. The body grows as it
/// arrives, so a length that lies costs no more memory than the bytes really sent.
pub(crate) fn read_frame(reader: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut head = [0u8; HEAD];
    let mut filled = 0;
    while filled < HEAD {
        match reader.read(&mut head[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    let (tag, length) = parse_head(&head)?;
    let mut body = Vec::with_capacity(length.min(1 << 20) as usize);
    reader.take(length).read_to_end(&mut body)?;
    if (body.len() as u64) < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(Frame { tag, body }))
}

/// The frame at the start of `bytes` if all of it is there: `Ok(None)` while more is to
/// come.
pub(crate) fn complete_frame(bytes: &[u8]) -> io::Result<Option<(Tag, &[u8])>> {
    let Some(head) = bytes.first_chunk::<HEAD>() else {
        return Ok(None);
    };
    let (tag, length) = parse_head(head)?;
    let body = &bytes[HEAD..];
    Ok((body.len() as u64 >= length).then(|| (tag, &body[..length as usize])))
}

/// How many bytes of the frame starting `bytes` are still to come, once its head is there.
pub(crate) fn missing(bytes: &[u8]) -> Option<u64> {
    let head = bytes.first_chunk::<HEAD>()?;
    let (_, length) = parse_head(head).ok()?;
    Some(length.saturating_sub((bytes.len() - HEAD) as u64))
}

fn parse_head(head: &[u8; HEAD]) -> io::Result<(Tag, u64)> {
    let tag = Tag::from_byte(head[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of unknown kind {:#04x}", head[0]),
        )
    })?;
    let mut length = [0u8; 8];
    length.copy_from_slice(&head[1..]);
    Ok((tag, u64::from_le_bytes(length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_a_reader_and_a_buffer() {
        let mut bytes = Vec::new();
        Signature::of::<u8, String>()
            .encode(Tag::Types, &mut bytes)
            .unwrap();
        encode(Tag::Input, &vec![7u32; 1000], &mut bytes).unwrap();
        let mut reader = bytes.as_slice();
        let types = read_frame(&mut reader).unwrap().unwrap();
        assert_eq!(types.tag, Tag::Types);
        assert_eq!(
            Signature::decode(&types.body).unwrap(),
            Signature::of::<u8, String>()
        );
        let input = read_frame(&mut reader).unwrap().unwrap();
        assert_eq!(decode::<Vec<u32>>(&input.body).unwrap(), vec![7u32; 1000]);
        assert!(read_frame(&mut reader).unwrap().is_none());

        let (tag, body) = complete_frame(&bytes).unwrap().unwrap();
        assert_eq!(tag, Tag::Types);
        assert_eq!(body, types.body);
        assert!(complete_frame(&bytes[..HEAD + 1]).unwrap().is_none());
        assert_eq!(
            missing(&bytes[..HEAD + 1]),
            Some(types.body.len() as u64 - 1)
        );
    }

    #[test]
    fn a_cut_frame_a_bad_tag_and_leftover_bytes_are_errors() {
        let mut bytes = Vec::new();
        encode(Tag::Value, "hello", &mut bytes).unwrap();
        let cut = &bytes[..bytes.len() - 1];
        assert!(read_frame(&mut &cut[..]).is_err());
        let mut bad = bytes.clone();
        bad[0] = 0;
        assert!(read_frame(&mut bad.as_slice()).is_err());
        assert!(complete_frame(&bad).is_err());
        // A u8 is one byte, a String more: the leftover is caught.
        let (_, body) = complete_frame(&bytes).unwrap().unwrap();
        assert!(decode::<u8>(body).is_err());
    }

    #[test]
    fn fingerprints_tell_types_apart_even_in_order() {
        assert_eq!(Signature::of::<u8, u16>(), Signature::of::<u8, u16>());
        assert_ne!(
            Signature::of::<u8, u16>().fingerprint,
            Signature::of::<u16, u8>().fingerprint
        );
    }
}
