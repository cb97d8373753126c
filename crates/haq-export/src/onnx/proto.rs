//! A minimal writer of ONNX models: the protobuf wire format
//! (<https://protobuf.dev/programming-guides/encoding/>) and the few ONNX messages an
//! inference graph needs. Field numbers are those of `onnx/onnx.proto` (ONNX IR version 7,
//! <https://github.com/onnx/onnx/blob/main/onnx/onnx.proto>): ModelProto, GraphProto,
//! NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto and
//! OperatorSetIdProto. Repeated scalars are written unpacked, which every parser accepts.

/// A protobuf message under construction: its encoded fields, in the order written.
#[derive(Debug, Clone, Default)]
pub struct Message(Vec<u8>);

/// Wire types.
const VARINT: u64 = 0;
const LEN: u64 = 2;
const I32: u64 = 5;

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire_type: u64) {
        self.raw_varint((u64::from(field) << 3) | wire_type);
    }

    /// An int32, int64 or enum field: negative values as their 64-bit two's complement.
    pub fn int(mut self, field: u32, v: i64) -> Message {
        self.tag(field, VARINT);
        self.raw_varint(v as u64);
        self
    }

    pub fn float(mut self, field: u32, v: f32) -> Message {
        self.tag(field, I32);
        self.0.extend(v.to_le_bytes());
        self
    }

    /// A bytes, string or embedded message field.
    pub fn bytes(mut self, field: u32, b: &[u8]) -> Message {
        self.tag(field, LEN);
        self.raw_varint(b.len() as u64);
        self.0.extend(b);
        self
    }

    pub fn string(self, field: u32, s: &str) -> Message {
        self.bytes(field, s.as_bytes())
    }

    pub fn message(self, field: u32, m: &Message) -> Message {
        self.bytes(field, &m.0)
    }
}

/// TensorProto.DataType values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Float = 1,
    Uint8 = 2,
    Int8 = 3,
}

/// A TensorProto holding `raw` (little-endian elements, row-major) under `name`.
pub fn tensor(name: &str, dims: &[i64], data_type: DataType, raw: &[u8]) -> Message {
    dims.iter()
        .fold(Message::new(), |m, &d| m.int(1, d))
        .int(2, data_type as i64)
        .string(8, name)
        .bytes(9, raw)
}

/// An attribute of a node (AttributeProto; `type` is field 20).
#[derive(Debug, Clone)]
pub enum Attribute {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
}

impl Attribute {
    fn encode(&self) -> Message {
        match self {
            // AttributeType FLOAT = 1, INT = 2, INTS = 7.
            Attribute::Float(name, f) => Message::new().string(1, name).float(2, *f).int(20, 1),
            Attribute::Int(name, i) => Message::new().string(1, name).int(3, *i).int(20, 2),
            Attribute::Ints(name, ints) => ints
                .iter()
                .fold(Message::new().string(1, name), |m, &i| m.int(8, i))
                .int(20, 7),
        }
    }
}

/// A NodeProto of the default (`ai.onnx`) domain, named after its first output.
pub fn node(op_type: &str, inputs: &[&str], outputs: &[&str], attributes: &[Attribute]) -> Message {
    let m = inputs.iter().fold(Message::new(), |m, i| m.string(1, i));
    let m = outputs.iter().fold(m, |m, o| m.string(2, o));
    let m = m.string(3, outputs[0]).string(4, op_type);
    attributes.iter().fold(m, |m, a| m.message(5, &a.encode()))
}

/// One dimension of a graph input's or output's shape.
#[derive(Debug, Clone, Copy)]
pub enum Dim<'a> {
    Fixed(i64),
    /// A symbolic dimension, such as the batch.
    Named(&'a str),
}

/// A ValueInfoProto: a tensor of `elem_type` and shape `dims`.
pub fn value_info(name: &str, elem_type: DataType, dims: &[Dim]) -> Message {
    let shape = dims.iter().fold(Message::new(), |m, d| {
        let dim = match d {
            Dim::Fixed(v) => Message::new().int(1, *v),
            Dim::Named(s) => Message::new().string(2, s),
        };
        m.message(1, &dim)
    });
    let tensor_type = Message::new().int(1, elem_type as i64).message(2, &shape);
    let type_proto = Message::new().message(1, &tensor_type);
    Message::new().string(1, name).message(2, &type_proto)
}

/// A GraphProto: `nodes` in topological order.
pub fn graph(
    name: &str,
    nodes: &[Message],
    initializers: &[Message],
    inputs: &[Message],
    outputs: &[Message],
) -> Message {
    let m = nodes.iter().fold(Message::new(), |m, n| m.message(1, n));
    let m = initializers
        .iter()
        .fold(m.string(2, name), |m, t| m.message(5, t));
    let m = inputs.iter().fold(m, |m, i| m.message(11, i));
    outputs.iter().fold(m, |m, o| m.message(12, o))
}

/// A ModelProto of IR version 7 importing the default domain at `opset`.
pub fn model(graph: &Message, opset: i64, producer: &str, version: &str) -> Vec<u8> {
    let opset_import = Message::new().string(1, "").int(2, opset);
    Message::new()
        .int(1, 7)
        .string(2, producer)
        .string(3, version)
        .message(7, graph)
        .message(8, &opset_import)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Examples from the protobuf encoding guide: 150 in field 1 is `08 96 01`, "testing"
    /// in field 2 is `12 07 74 65 73 74 69 6e 67`, and -2 as an int32 takes ten bytes.
    #[test]
    fn encodes_the_guides_examples() {
        assert_eq!(Message::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        assert_eq!(
            Message::new().string(2, "testing").into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        assert_eq!(
            Message::new().int(1, -2).into_bytes(),
            [0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            Message::new().float(2, 1.0).into_bytes(),
            [0x15, 0x00, 0x00, 0x80, 0x3f]
        );
    }
}
