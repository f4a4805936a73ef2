// RUN: nnopt-opt %s -p nn-legalize-quant | filecheck %s
// RUN: nnopt-opt %s -p 'nn-legalize-quant{rounding=onnx_rint}' | filecheck %s --check-prefix=ONNX
// RUN: nnopt-opt %s -p nn-legalize-quant | nnopt-opt -p nn-legalize-quant | filecheck %s
// RUN: not nnopt-opt %s -p 'nn-legalize-quant{rounding=up}' 2>&1 | filecheck %s --check-prefix=ERR

// Power-of-two scales keep the numbers checkable by hand: a real multiplier
// M * 2^(shift - 31) with M = 2^30 is 2^(shift - 1).

!x = tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5:-3>>
!w = tensor<3x1x1x2x!quant.uniform<i8:f32:0, {0.25,0.125,0.75}>>
!b = tensor<3x!quant.uniform<i32:f32:0, {0.125,0.0625,0.375}>>
!y = tensor<1x2x2x3x!quant.uniform<i8:f32, 0.5:4>>
!z = tensor<1x2x2x3x!quant.uniform<i8:f32, 0.25>>
!s = tensor<1x2x2x3x!quant.uniform<i8:f32, 1.0:-10>>
!p = tensor<1x2x2x3x!quant.uniform<i8:f32, 0.00390625:-128>>

// CHECK-LABEL: nn.graph @q
nn.graph @q(%x: !x, %z: !z, %f: tensor<4xf32>) -> (!s, !p, !z, !z, tensor<4xf32>) {
  %w = nn.const dense<[[[[1, -2]]], [[[3, 4]]], [[[-5, 6]]]]> : tensor<3x1x1x2xi8> -> !w
  %b = nn.const dense<[10, -20, 30]> : tensor<3xi32> -> !b

  // Per-channel real multipliers 0.5*0.25/0.5 = 2^-2, 2^-3 and 0.75; relu6 clamps to [zp, zp + 6/0.5].
  // CHECK: nn.conv2d
  // CHECK-SAME: rounding = "tflite_double"
  // CHECK-SAME: qparams = {multiplier = array<i32: 1073741824, 1073741824, 1610612736>, shift = array<i32: -1, -2, 0>, clamp = array<i32: 4, 16>, input_zp = -3 : i32, weight_zp = array<i32: 0, 0, 0>, output_zp = 4 : i32}
  // ONNX: nn.conv2d
  // ONNX-SAME: rounding = "onnx_rint"
  // ONNX-SAME: qparams = {multiplier = array<f32: 2.500000e-01, 1.250000e-01, 7.500000e-01>, clamp = array<i32: 4, 16>, input_zp = -3 : i32, weight_zp = array<i32: 0, 0, 0>, output_zp = 4 : i32}
  %y = nn.conv2d %x, %w, %b {strides = array<i64: 2, 2>, padding = "valid", fused_activation = "relu6"} : (!x, !w, !b) -> !y

  // ADD rescales both inputs to 2*max(s1, s2) = 1.0 with a 2^20 headroom: 0.5 -> 2^-1, 0.25 -> 2^-2, 1/2^20.
  // CHECK: nn.add
  // CHECK-SAME: qparams = {left_shift = 20 : i32, input1_multiplier = array<i32: 1073741824>, input1_shift = array<i32: 0>, input2_multiplier = array<i32: 1073741824>, input2_shift = array<i32: -1>, output_multiplier = array<i32: 1073741824>, output_shift = array<i32: -19>, input1_zp = 4 : i32, input2_zp = 0 : i32, output_zp = -10 : i32, clamp = array<i32: -128, 127>}
  // ONNX: nn.add
  // ONNX-SAME: qparams = {input1_scale = array<f32: 5.000000e-01>, input1_zp = 4 : i32, input2_scale = array<f32: 2.500000e-01>, input2_zp = 0 : i32, output_scale = array<f32: 1.000000e+00>, output_zp = -10 : i32, clamp = array<i32: -128, 127>}
  %s = nn.add %y, %z : (!y, !z) -> !s

  // Softmax: beta * s_in * 2^(31-5) = 2^26 -> M = 2^30, left shift 27; diff_min = -floor(31 * 2^26 / 2^27) = -15.
  // CHECK: nn.softmax
  // CHECK-SAME: qparams = {input_multiplier = array<i32: 1073741824>, input_left_shift = 27 : i32, diff_min = -15 : i32}
  %p = nn.softmax %s : (!s) -> !p

  // An op with a rounding keeps it: single rounding, multiplier 0.5/0.25 = 2.
  // CHECK: nn.relu
  // CHECK-SAME: rounding = "single"
  // CHECK-SAME: qparams = {multiplier = array<i32: 1073741824>, shift = array<i32: 2>, input_zp = 4 : i32, output_zp = 0 : i32, clamp = array<i32: 0, 127>}
  %r = nn.relu %y {rounding = "single"} : (!y) -> !z

  // Stored parameters are authoritative: left as they are.
  // CHECK: nn.relu
  // CHECK-SAME: qparams = {multiplier = array<i32: 7>, shift = array<i32: 0>, input_zp = 0 : i32, output_zp = 0 : i32, clamp = array<i32: 0, 100>}
  %r2 = nn.relu %z {qparams = {multiplier = array<i32: 7>, shift = array<i32: 0>, input_zp = 0 : i32, output_zp = 0 : i32, clamp = array<i32: 0, 100>}} : (!z) -> !z

  // Float ops get nothing.
  // CHECK: nn.relu %f : (tensor<4xf32>) -> tensor<4xf32>
  %g = nn.relu %f : (tensor<4xf32>) -> tensor<4xf32>
  nn.output %s, %p, %r, %r2, %g : !s, !p, !z, !z, tensor<4xf32>
}

// ERR: error: pass 'nn-legalize-quant': unknown rounding 'up' (use one of tflite_double, single, onnx_rint)
