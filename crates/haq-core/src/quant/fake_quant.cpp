// Fused linear fake quantization for float CPU tensors (the semantics are fake_quantize's
// in linear.rs): one pass over the tensor forward and one backward, where the same
// computation from libtorch ops takes about eleven passes, each as costly as a float layer's
// elementwise work on MobileNet-V2's large, thin feature maps (docs/performance.md).
//
// Values are handled in grid units t = x * levels / c: the clip range is [lo, levels],
// lo = -levels when signed, 0 when not.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Elements per block: the unit of parallel work, and of the clip gradient's partial sums,
// which are added in block order so the sum does not depend on the thread count.
constexpr int64_t kBlock = 16384;

struct Grid {
  float lo;        // lower clip in grid units
  float hi;        // upper clip in grid units (= levels)
  float to_grid;   // levels / c
  float from_grid; // c / levels
  bool binary;     // 1-bit signed weights: c * sign(x), sign(0) = +1
};

// Round half to even, as torch.round does: for |v| < 2^22, adding and subtracting
// 1.5 * 2^23 leaves the nearest integer under the default rounding mode. Unlike
// nearbyint it vectorises on any x86-64.
inline float round_even(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

void quantize(const float* x, float* q, int64_t n, const Grid& g) {
  at::parallel_for(0, n, kBlock, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float t = x[i] * g.to_grid;
      t = t < g.lo ? g.lo : t;
      t = t > g.hi ? g.hi : t;
      t = g.binary ? (t >= 0.0f ? 1.0f : -1.0f) : round_even(t);
      q[i] = t * g.from_grid;
    }
  });
}

// Lanes of the clip gradient's running sums: independent sums that stay in vector
// registers (one running sum is a serial chain of additions).
constexpr int kLanes = 8;

// GCC vector types: four floats (one SSE register, the baseline x86-64 this is compiled
// for), and the masks their comparisons give. Written out rather than left to the
// auto-vectoriser, which kept this loop in vector registers in one build and spilled the
// running sums to the stack in another (-fopenmp changed the inlining around it;
// docs/performance.md). Not eight floats: GCC lowers a vector wider than the target's
// registers through memory: forward and backward took 1.4x as long.
constexpr int kWidth = 4;
typedef float Floats __attribute__((vector_size(4 * kWidth)));
typedef int32_t Mask __attribute__((vector_size(4 * kWidth)));

inline Floats splat(float v) { return Floats{v, v, v, v}; }
inline Floats load(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Floats v) { std::memcpy(p, &v, sizeof v); }
// d where the mask is set, +0 elsewhere: a select, not a jump (a jump on data this random
// mispredicts for a large share of the elements).
inline Floats keep(Floats d, Mask m) { return (Floats)((Mask)d & m); }

// One block of the backward pass. Element i's terms go to lane i % kLanes, in order, and
// the lanes are added in order at the end, so the sum depends on neither the build nor
// the thread count.
template <bool WantX, bool WantClip, bool Signed>
float backward_block(const float* x, const float* grad, float* grad_x, int64_t begin,
                     int64_t end, const Grid& g) {
  const Floats to_grid = splat(g.to_grid), lo = splat(g.lo), hi = splat(g.hi);
  Floats sums[kLanes / kWidth] = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int k = 0; k < kLanes / kWidth; ++k) {
      const int64_t at = i + k * kWidth;
      const Floats t = load(x + at) * to_grid;
      const Floats d = load(grad + at);
      if (WantX) store(grad_x + at, keep(d, (t > lo) & (t < hi)));
      if (WantClip) sums[k] += Signed ? keep(d, t >= hi) - keep(d, t <= lo) : keep(d, t >= hi);
    }
  }
  float lanes[kLanes];
  std::memcpy(lanes, sums, sizeof lanes);
  for (int j = 0; i < end; ++i, ++j) {
    const float t = x[i] * g.to_grid;
    const float d = grad[i];
    if (WantX) grad_x[i] = (t > g.lo && t < g.hi) ? d : 0.0f;
    if (WantClip) lanes[j] += Signed ? (t >= g.hi ? d : 0.0f) - (t <= g.lo ? d : 0.0f)
                                     : (t >= g.hi ? d : 0.0f);
  }
  float sum = 0.0f;
  for (float lane : lanes) sum += lane;
  return sum;
}

// The straight-through gradient: dq/dx = 1 strictly inside the clip range (as the
// backward of hardtanh), 0 outside; PACT's dq/dc = 1 at or above the upper clip, -1 at or
// below the lower one when signed, 0 inside. Partial sums per block, added in block order,
// so the clip gradient does not depend on the thread count.
template <bool WantX, bool WantClip, bool Signed>
double quantize_backward(const float* x, const float* grad, float* grad_x, int64_t n,
                         const Grid& g) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      partial[b] = backward_block<WantX, WantClip, Signed>(
          x, grad, grad_x, b * kBlock, std::min(n, (b + 1) * kBlock), g);
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

// quantize_backward for the runtime flags (at least one wanted); grad_x may be null when
// !want_x.
double straight_through(const float* x, const float* grad, float* grad_x, int64_t n,
                        const Grid& g, bool want_x, bool want_clip, bool is_signed) {
  if (want_x && want_clip) {
    return is_signed ? quantize_backward<true, true, true>(x, grad, grad_x, n, g)
                     : quantize_backward<true, true, false>(x, grad, grad_x, n, g);
  }
  if (want_x) return quantize_backward<true, false, false>(x, grad, grad_x, n, g);
  return is_signed ? quantize_backward<false, true, true>(x, grad, grad_x, n, g)
                   : quantize_backward<false, true, false>(x, grad, grad_x, n, g);
}

Grid grid_of(double c, double levels, bool is_signed, bool binary) {
  return Grid{is_signed ? static_cast<float>(-levels) : 0.0f, static_cast<float>(levels),
              static_cast<float>(levels / c), static_cast<float>(c / levels), binary};
}

at::Tensor quantized(const at::Tensor& x, const Grid& g) {
  at::Tensor q = at::empty_like(x);
  quantize(x.data_ptr<float>(), q.data_ptr<float>(), x.numel(), g);
  return q;
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct FakeQuantize : public torch::autograd::Function<FakeQuantize> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& clip,
                            double c, double levels, bool is_signed, bool binary) {
    ctx->save_for_backward({x});
    ctx->saved_data["c"] = c;
    ctx->saved_data["levels"] = levels;
    ctx->saved_data["signed"] = is_signed;
    ctx->saved_data["binary"] = binary;
    return quantized(x, grid_of(c, levels, is_signed, binary));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const bool is_signed = ctx->saved_data["signed"].toBool();
    const Grid g = grid_of(ctx->saved_data["c"].toDouble(), ctx->saved_data["levels"].toDouble(),
                           is_signed, ctx->saved_data["binary"].toBool());
    // Dense in one memory format, two tensors of one shape hold elements in one order.
    const auto format = x.suggest_memory_format();
    const at::Tensor grad = grads[0].contiguous(format);
    TORCH_CHECK(x.is_contiguous(format), "fake quantize: saved input not dense");
    // Autograd calls this only when x or the clip needs a gradient.
    at::Tensor grad_x, grad_clip;
    const bool want_x = ctx->needs_input_grad(0), want_clip = ctx->needs_input_grad(1);
    if (want_x) grad_x = at::empty_like(x);
    const double clip_sum = straight_through(
        x.data_ptr<float>(), grad.data_ptr<float>(), want_x ? grad_x.data_ptr<float>() : nullptr,
        x.numel(), g, want_x, want_clip, is_signed);
    if (want_clip) grad_clip = at::scalar_tensor(clip_sum, x.options());
    return {grad_x, grad_clip, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void set_error(char* err, size_t len, const char* what) {
  if (len == 0) return;
  std::strncpy(err, what, len - 1);
  err[len - 1] = '\0';
}

}  // namespace

extern "C" {

// Fake-quantizes `x` (a float CPU tensor) with the clip `clip` (a scalar tensor whose value
// is c > 0) to `levels` levels above zero. Returns a new tensor the caller owns, or null
// with the error's text in `err`.
at::Tensor* haq_fake_quantize(const at::Tensor* x, const at::Tensor* clip, double c,
                              double levels, int is_signed, int binary, char* err,
                              size_t err_len) {
  try {
    TORCH_CHECK(x->scalar_type() == at::kFloat && x->device().is_cpu(),
                "fake quantize: a float CPU tensor is needed");
    const at::Tensor xc = x->contiguous(x->suggest_memory_format());
    const bool track =
        at::GradMode::is_enabled() && (xc.requires_grad() || clip->requires_grad());
    if (!track) {
      return new at::Tensor(quantized(xc, grid_of(c, levels, is_signed != 0, binary != 0)));
    }
    return new at::Tensor(
        FakeQuantize::apply(xc, *clip, c, levels, is_signed != 0, binary != 0));
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

}  // extern "C"
