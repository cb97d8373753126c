// Fused linear fake quantization for float CPU tensors (the semantics are fake_quantize's
// in linear.rs): one pass over the tensor forward and one backward, where the same
// computation from libtorch ops takes about eleven passes, each as costly as a float layer's
// elementwise work on MobileNet-V2's large, thin feature maps (docs/performance.md).
//
// The input may be the previous layer's output y before its activation (ReLU or ReLU6,
// a clamp of y to [act_lo, act_hi]): the kernel applies it too, which saves the activation's
// own passes forward and backward, and its output tensor. Values are then handled in grid
// units t = x * levels / c: the clip range is [lo, levels], lo = -levels when signed, 0
// when not.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstring>
#include <vector>

namespace {

// Elements per block: the unit of parallel work, and of the clip gradient's partial sums,
// which are added in block order so the sum does not depend on the thread count.
constexpr int64_t kBlock = 16384;

struct Grid {
  float act_lo;    // the activation's clamp (-inf and +inf for none)
  float act_hi;
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
      float v = x[i];
      v = v < g.act_lo ? g.act_lo : v;
      v = v > g.act_hi ? g.act_hi : v;
      float t = v * g.to_grid;
      t = t < g.lo ? g.lo : t;
      t = t > g.hi ? g.hi : t;
      t = g.binary ? (t >= 0.0f ? 1.0f : -1.0f) : round_even(t);
      q[i] = t * g.from_grid;
    }
  });
}

// Four floats, an SSE register, written as a GCC vector so the backward pass is vectorised
// whatever the compiler's auto-vectoriser makes of the loop: it left the signed variant a
// scalar loop with jumps once the activation's clamp was added.
typedef float Floats __attribute__((vector_size(16)));
typedef int32_t Mask __attribute__((vector_size(16)));
constexpr int kWidth = sizeof(Floats) / sizeof(float);

inline Floats splat(float v) { return Floats{} + v; }
inline Floats masked(Mask m, Floats d) { return (Floats)(m & (Mask)d); }
inline Floats load(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Floats v) { std::memcpy(p, &v, sizeof v); }

// One block of the backward pass, branch-free: masks and selects, not jumps (a jump on data
// this random mispredicts for a large share of the elements). The clip gradient is summed in
// eight lanes, two vectors (one sum would be a serial chain of additions).
template <bool WantX, bool WantClip, bool Signed>
float backward_block(const float* x, const float* grad, float* grad_x, int64_t begin,
                     int64_t end, const Grid& g) {
  const Floats act_lo = splat(g.act_lo), act_hi = splat(g.act_hi);
  const Floats lo = splat(g.lo), hi = splat(g.hi), to_grid = splat(g.to_grid);
  Floats lanes[2] = {};
  // Eight elements from x, grad to grad_x, their clip gradient into the lanes.
  auto eight = [&](const float* x8, const float* grad8, float* grad_x8) {
    for (int h = 0; h < 2; ++h) {
      const Floats v = load(x8 + h * kWidth), d = load(grad8 + h * kWidth);
      const Floats a = v < act_lo ? act_lo : (v > act_hi ? act_hi : v);
      const Floats t = a * to_grid;
      if (WantX) {
        store(grad_x8 + h * kWidth,
              masked((v > act_lo) & (v < act_hi) & (t > lo) & (t < hi), d));
      }
      if (WantClip) lanes[h] += masked(t >= hi, d) - (Signed ? masked(t <= lo, d) : Floats{});
    }
  };
  int64_t i = begin;
  for (; i + 2 * kWidth <= end; i += 2 * kWidth) eight(x + i, grad + i, grad_x + i);
  if (i < end) {
    // The tail, padded with zeros: their gradient adds +0 to the sums (never -0: the sums
    // start at +0, and x + -x is +0).
    float x8[2 * kWidth] = {}, grad8[2 * kWidth] = {}, grad_x8[2 * kWidth];
    const size_t bytes = (end - i) * sizeof(float);
    std::memcpy(x8, x + i, bytes);
    std::memcpy(grad8, grad + i, bytes);
    eight(x8, grad8, grad_x8);
    if (WantX) std::memcpy(grad_x + i, grad_x8, bytes);
  }
  float sum = 0.0f;
  for (const Floats& lane : lanes) {
    for (int j = 0; j < kWidth; ++j) sum += lane[j];
  }
  return sum;
}

// The straight-through gradient: dq/dx = 1 strictly inside the clip range and the
// activation's range (as the backward of hardtanh), 0 outside; PACT's dq/dc = 1 at or above
// the upper clip, -1 at or below the lower one when signed, 0 inside. Partial sums per
// block, added in block order, so the clip gradient does not depend on the thread count.
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

Grid grid_of(double act_lo, double act_hi, double c, double levels, bool is_signed,
             bool binary) {
  return Grid{static_cast<float>(act_lo),
              static_cast<float>(act_hi),
              is_signed ? static_cast<float>(-levels) : 0.0f,
              static_cast<float>(levels),
              static_cast<float>(levels / c),
              static_cast<float>(c / levels),
              binary};
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
                            double act_lo, double act_hi, double c, double levels,
                            bool is_signed, bool binary) {
    ctx->save_for_backward({x});
    ctx->saved_data["act_lo"] = act_lo;
    ctx->saved_data["act_hi"] = act_hi;
    ctx->saved_data["c"] = c;
    ctx->saved_data["levels"] = levels;
    ctx->saved_data["signed"] = is_signed;
    ctx->saved_data["binary"] = binary;
    return quantized(x, grid_of(act_lo, act_hi, c, levels, is_signed, binary));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const bool is_signed = ctx->saved_data["signed"].toBool();
    const Grid g = grid_of(ctx->saved_data["act_lo"].toDouble(),
                           ctx->saved_data["act_hi"].toDouble(), ctx->saved_data["c"].toDouble(),
                           ctx->saved_data["levels"].toDouble(), is_signed,
                           ctx->saved_data["binary"].toBool());
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
    return {grad_x,       grad_clip,    at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void set_error(char* err, size_t len, const char* what) {
  if (len == 0) return;
  std::strncpy(err, what, len - 1);
  err[len - 1] = '\0';
}

}  // namespace

extern "C" {

// Fake-quantizes clamp(`x`, act_lo, act_hi) (`x` a float CPU tensor) with the clip `clip` (a
// scalar tensor whose value is c > 0) to `levels` levels above zero. Returns a new tensor
// the caller owns, or null with the error's text in `err`.
at::Tensor* haq_fake_quantize(const at::Tensor* x, const at::Tensor* clip, double act_lo,
                              double act_hi, double c, double levels, int is_signed, int binary,
                              char* err, size_t err_len) {
  try {
    TORCH_CHECK(x->scalar_type() == at::kFloat && x->device().is_cpu(),
                "fake quantize: a float CPU tensor is needed");
    const at::Tensor xc = x->contiguous(x->suggest_memory_format());
    const bool track =
        at::GradMode::is_enabled() && (xc.requires_grad() || clip->requires_grad());
    if (!track) {
      return new at::Tensor(
          quantized(xc, grid_of(act_lo, act_hi, c, levels, is_signed != 0, binary != 0)));
    }
    return new at::Tensor(FakeQuantize::apply(xc, *clip, act_lo, act_hi, c, levels,
                                              is_signed != 0, binary != 0));
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

}  // extern "C"
