//! `put_bytes`: stores the bytes it is given (as hex) as an artifact of the run. Lets tests and flows
//! hand other nodes an artifact with exact contents, e.g. audio that is empty, not audio, or too long.

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeResult, NodeType, artifacts, export_node, json, outputs,
};

/// The plugin.
pub struct PutBytes;

impl Node for PutBytes {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("put_bytes")
                .label("Put bytes")
                .description("Stores hex-encoded bytes as an artifact of the run.")
                .input("hex", "string")
                .input("content_type", "string")
                .input("name", "string")
                .output("artifact", "artifact")
                .output("artifact_id", "string")
                .output("size", "number"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        let bytes = decode_hex(inv.input_str_opt("hex")?.unwrap_or(""))?;
        let content_type = inv
            .input_str_opt("content_type")?
            .unwrap_or("application/octet-stream");
        let info = artifacts::put(content_type, &bytes, inv.input_str_opt("name")?)?;
        Ok(outputs! {
            "artifact" => json!({"$artifact": info.id, "artifact_id": info.id,
                                 "content_type": info.content_type, "size_bytes": info.size}),
            "artifact_id" => info.id,
            "size" => info.size,
        }
        .into())
    }
}

export_node!(PutBytes);

/// The bytes of a hex string (either case, whitespace ignored).
pub fn decode_hex(s: &str) -> Result<Vec<u8>, Error> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(Error::invalid_input("hex has an odd number of digits"));
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(Error::invalid_input(format!(
            "hex has a non-hex character {:?}",
            char::from(b)
        ))),
    };
    digits
        .chunks_exact(2)
        .map(|p| Ok(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hex() {
        assert_eq!(decode_hex("00ff 7A").unwrap(), vec![0, 255, 0x7a]);
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
        assert!(decode_hex("abc").unwrap_err().message.contains("odd"));
        assert!(decode_hex("zz").unwrap_err().message.contains("non-hex"));
    }
}
