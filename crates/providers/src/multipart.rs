//! A `multipart/form-data` body for the OpenAI-compatible upload endpoints (audio transcriptions, image
//! edits): text fields, then files. Field values cannot break out of their part (CR/LF become spaces).

/// One file part.
pub struct FilePart<'a> {
    /// The form field's name (`file`, `image`, `mask`).
    pub field: &'a str,
    /// The file name sent, without extension: the extension is taken from the content's type.
    pub stem: &'a str,
    pub bytes: &'a [u8],
    /// Its content type (sniffed by the caller or here).
    pub content_type: String,
    /// Its file extension.
    pub extension: &'static str,
}

impl<'a> FilePart<'a> {
    /// An image part; its type comes from its magic bytes (PNG when unknown: providers check it themselves).
    pub fn new(field: &'a str, stem: &'a str, bytes: &'a [u8]) -> Self {
        let (content_type, extension) = match crate::image::sniff(bytes) {
            Some("image/jpeg") => ("image/jpeg", "jpg"),
            Some("image/webp") => ("image/webp", "webp"),
            _ => ("image/png", "png"),
        };
        FilePart {
            field,
            stem,
            bytes,
            content_type: content_type.into(),
            extension,
        }
    }

    /// A part with a given type and extension.
    pub fn typed(
        field: &'a str,
        stem: &'a str,
        bytes: &'a [u8],
        content_type: &str,
        extension: &'static str,
    ) -> Self {
        FilePart {
            field,
            stem,
            bytes,
            content_type: one_line(content_type),
            extension,
        }
    }
}

/// The body and its `Content-Type` (with the boundary).
pub fn multipart<S: AsRef<str>>(fields: &[(&str, S)], files: &[FilePart<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("----abstractgateway-{}", uuid::Uuid::new_v4().simple());
    let size: usize = files.iter().map(|f| f.bytes.len()).sum();
    let mut body = Vec::with_capacity(size + 1024);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                one_line(name),
                one_line(value.as_ref())
            )
            .as_bytes(),
        );
    }
    for f in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}.{}\"\r\nContent-Type: {}\r\n\r\n",
                one_line(f.field),
                one_line(f.stem),
                f.extension,
                f.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(f.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Strips CR/LF and quotes so a value cannot break out of its header or part.
pub fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ").replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_cannot_forge_a_part() {
        let (ct, body) = multipart(
            &[(
                "prompt",
                "a\r\n--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nevil",
            )],
            &[FilePart::typed(
                "file",
                "audio",
                b"RIFF",
                "audio/wav",
                "wav",
            )],
        );
        let text = String::from_utf8_lossy(&body);
        assert!(ct.starts_with("multipart/form-data; boundary="));
        let parts = text
            .split("\r\n")
            .filter(|l| l.starts_with("Content-Disposition"))
            .count();
        assert_eq!(parts, 2, "{text}");
        assert!(text.contains("filename=\"audio.wav\""));
    }
}
