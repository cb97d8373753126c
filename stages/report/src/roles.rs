//! What part a layer plays, as the paper's figures tell layers apart: depthwise convs,
//! pointwise (1x1) convs, other convs (the stem) and the classifier.

use haq_cost::arch::{LayerKind, LayerShape};
use haq_cost::policy::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Depthwise,
    /// A 1x1 convolution (kind conv, kernel 1).
    Pointwise,
    /// Any other convolution, e.g. MobileNet's 3x3 stem.
    Conv,
    Linear,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Depthwise, Role::Pointwise, Role::Conv, Role::Linear];

    pub fn of(shape: &LayerShape) -> Role {
        match shape.kind {
            LayerKind::Depthwise => Role::Depthwise,
            LayerKind::Conv if shape.kernel == 1 => Role::Pointwise,
            LayerKind::Conv => Role::Conv,
            LayerKind::Linear => Role::Linear,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Depthwise => "depthwise",
            Role::Pointwise => "pointwise (1x1)",
            Role::Conv => "other conv",
            Role::Linear => "linear",
        }
    }
}

/// Which bit width of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bits {
    Weights,
    Activations,
}

/// The mean bit width of the layers in `role`, or `None` when there is no such layer or
/// the policy has no activation bits (k-means mode).
pub fn mean_bits(policy: &Policy, roles: &[Role], role: Role, bits: Bits) -> Option<f64> {
    let values: Vec<f64> = policy
        .layers
        .iter()
        .zip(roles)
        .filter(|(_, r)| **r == role)
        .map(|(l, _)| match bits {
            Bits::Weights => Some(f64::from(l.w_bits)),
            Bits::Activations => l.a_bits.map(f64::from),
        })
        .collect::<Option<_>>()?;
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use haq_cost::policy::LayerBits;

    fn shape(kind: LayerKind, kernel: usize) -> LayerShape {
        LayerShape {
            kind,
            c_in: 8,
            c_out: 8,
            kernel,
            stride: 1,
            groups: 1,
            in_h: 4,
            in_w: 4,
            out_h: 4,
            out_w: 4,
            params: 64 * kernel * kernel,
        }
    }

    #[test]
    fn pointwise_is_a_1x1_conv_and_means_are_per_role() {
        let roles: Vec<Role> = [
            shape(LayerKind::Conv, 3),
            shape(LayerKind::Depthwise, 3),
            shape(LayerKind::Conv, 1),
            shape(LayerKind::Depthwise, 3),
            shape(LayerKind::Conv, 1),
            shape(LayerKind::Linear, 1),
        ]
        .iter()
        .map(Role::of)
        .collect();
        assert_eq!(
            roles,
            [
                Role::Conv,
                Role::Depthwise,
                Role::Pointwise,
                Role::Depthwise,
                Role::Pointwise,
                Role::Linear
            ]
        );
        let bits = |w, a| LayerBits {
            w_bits: w,
            a_bits: Some(a),
        };
        let policy = Policy {
            layers: vec![
                bits(8, 8),
                bits(6, 2),
                bits(4, 5),
                bits(5, 3),
                bits(2, 8),
                bits(3, 3),
            ],
        };
        let mean = |role, b| mean_bits(&policy, &roles, role, b);
        assert_eq!(mean(Role::Depthwise, Bits::Activations), Some(2.5));
        assert_eq!(mean(Role::Pointwise, Bits::Activations), Some(6.5));
        assert_eq!(mean(Role::Depthwise, Bits::Weights), Some(5.5));
        assert_eq!(mean(Role::Pointwise, Bits::Weights), Some(3.0));
        let kmeans = Policy {
            layers: policy
                .layers
                .iter()
                .map(|l| LayerBits { a_bits: None, ..*l })
                .collect(),
        };
        assert_eq!(
            mean_bits(&kmeans, &roles, Role::Depthwise, Bits::Activations),
            None
        );
        assert_eq!(
            mean_bits(&kmeans, &roles, Role::Depthwise, Bits::Weights),
            Some(5.5)
        );
    }
}
