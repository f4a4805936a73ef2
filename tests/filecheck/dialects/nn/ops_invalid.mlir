// RUN: nnopt-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Every verifier rule of the nn dialect, with the message a user sees (file:line:col: error: ...).

nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x5xf32>) -> tensor<1x8x8x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x5xf32>) -> tensor<1x8x8x4xf32>
  nn.output %y : tensor<1x8x8x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op input channels 3 are not a multiple of weight in-channels 5 (%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x5xf32>)

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  nn.output %y : tensor<1x8x8x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op result shape [1, 8, 8, 4] != expected [1, 6, 6, 4]

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1>, padding = "valid"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op strides must have 2 elements, got [1]

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "full"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op padding must be one of same, valid; got 'full'

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op explicit padding must be 4 non-negative integers [top, bottom, left, right], got [1, 1]

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid", fused_activation = "gelu"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op fused_activation must be one of none, relu, relu6, relu_n1_to_1; got 'gelu'

// -----
nn.graph @g(%x: tensor<1x2x2x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x1x1x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x2x2x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x1x1x4xf32>
  nn.output %y : tensor<1x1x1x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op window [3, 3] does not fit input [1, 2, 2, 3] with padding [0, 0, 0, 0]

// -----
nn.graph @g(%x: tensor<8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op input must have rank 4, got %x: tensor<8x8x3xf32>

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf16>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf16>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op weight element type must match the input: %w: tensor<4x3x3x3xf16> vs %x: tensor<1x8x8x3xf32>

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w, %b {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<3xf32>) -> tensor<1x6x6x4xf32>
  nn.output %y : tensor<1x6x6x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op bias must have shape [4], got %b: tensor<3xf32>

// -----
nn.graph @g(%x: tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, %w: tensor<2x3x3x2xf32>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, tensor<2x3x3x2xf32>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %y : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op a quantized op needs quantized weights, got %w: tensor<2x3x3x2xf32>

// -----
nn.graph @g(%x: tensor<1x3x3x2xf32>, %w: tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x1x1x2xf32> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x3x3x2xf32>, tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x1x1x2xf32>
  nn.output %y : tensor<1x1x1x2xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op weight element type must match the input: %w: tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>> vs %x: tensor<1x3x3x2xf32> (hybrid model: dequantize the weights first)

// -----
nn.graph @g(%x: tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, %w: tensor<2x3x3x2x!quant.uniform<i8:f32:3, {0.5,0.25}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, tensor<2x3x3x2x!quant.uniform<i8:f32:3, {0.5,0.25}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %y : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op weights must be quantized per tensor or along dimension 0, got %w

// -----
nn.graph @g(%x: tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, %w: tensor<2x3x3x2x!quant.uniform<i8:f32:0, {0.5,0.25}>>, %b: tensor<2x!quant.uniform<i32:f32:0, {0.25,0.25}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>> {
  %y = nn.conv2d %x, %w, %b {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, tensor<2x3x3x2x!quant.uniform<i8:f32:0, {0.5,0.25}>>, tensor<2x!quant.uniform<i32:f32:0, {0.25,0.25}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %y : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op bias scale 0.25 of channel 1 must equal input scale * weight scale = 0.125

// -----
nn.graph @g(%x: tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, %w: tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>, %b: tensor<2x!quant.uniform<i8:f32, 0.25>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>> {
  %y = nn.conv2d %x, %w, %b {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>, tensor<2x!quant.uniform<i8:f32, 0.25>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %y : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op a quantized op needs a 32-bit quantized bias, got %b

// -----
nn.graph @g(%x: tensor<1x3x3x2x!quant.uniform<i8:f32:3, {0.5,0.5}>>, %w: tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x3x3x2x!quant.uniform<i8:f32:3, {0.5,0.5}>>, tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %y : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op activations must be quantized per tensor, got %x

// -----
nn.graph @g(%x: tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, %w: tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>> {
  %y = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid", rounding = "stochastic"} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 0.5>>, tensor<2x3x3x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %y : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.5>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.conv2d' op rounding must be one of tflite_double, single, onnx_rint; got 'stochastic'

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<1x3x3x4xf32>) -> tensor<1x8x8x4xf32> {
  %y = nn.depthwise_conv2d %x, %w {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x8x8x3xf32>, tensor<1x3x3x4xf32>) -> tensor<1x8x8x4xf32>
  nn.output %y : tensor<1x8x8x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.depthwise_conv2d' op weight channels 4 are not a multiple of input channels 3

// -----
nn.graph @g(%x: tensor<1x8x8x3xf32>, %w: tensor<2x3x3x3xf32>) -> tensor<1x8x8x3xf32> {
  %y = nn.depthwise_conv2d %x, %w {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x8x8x3xf32>, tensor<2x3x3x3xf32>) -> tensor<1x8x8x3xf32>
  nn.output %y : tensor<1x8x8x3xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.depthwise_conv2d' op depthwise weight must be [1, KH, KW, C], got %w: tensor<2x3x3x3xf32>

// -----
nn.graph @g(%x: tensor<1x10xf32>, %w: tensor<4x3xf32>) -> tensor<1x4xf32> {
  %y = nn.fully_connected %x, %w : (tensor<1x10xf32>, tensor<4x3xf32>) -> tensor<1x4xf32>
  nn.output %y : tensor<1x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.fully_connected' op input %x: tensor<1x10xf32> does not flatten to rows of 3 (weight %w: tensor<4x3xf32>)

// -----
nn.graph @g(%x: tensor<2x5xf32>, %w: tensor<4x5xf32>) -> tensor<1x4xf32> {
  %y = nn.fully_connected %x, %w : (tensor<2x5xf32>, tensor<4x5xf32>) -> tensor<1x4xf32>
  nn.output %y : tensor<1x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.fully_connected' op result shape [1, 4] != expected [2, 4]

// -----
nn.graph @g(%a: tensor<3x4xf32>, %b: tensor<5x6xf32>) -> tensor<3x6xf32> {
  %y = nn.matmul %a, %b : (tensor<3x4xf32>, tensor<5x6xf32>) -> tensor<3x6xf32>
  nn.output %y : tensor<3x6xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.matmul' op incompatible operands %a: tensor<3x4xf32> and %b: tensor<5x6xf32>

// -----
nn.graph @g(%a: tensor<3x4xf32>, %b: tensor<3xf32>) -> tensor<3x4xf32> {
  %y = nn.add %a, %b : (tensor<3x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  nn.output %y : tensor<3x4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.add' op operands do not broadcast: %a: tensor<3x4xf32>, %b: tensor<3xf32>

// -----
nn.graph @g(%a: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.mul %a, %b : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.mul' op result shape [4] != broadcast shape [3, 4]

// -----
nn.graph @g(%a: tensor<4xf32>, %b: tensor<4x!quant.uniform<i8:f32, 0.5>>) -> tensor<4xf32> {
  %y = nn.sub %a, %b : (tensor<4xf32>, tensor<4x!quant.uniform<i8:f32, 0.5>>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.sub' op mixes float and quantized tensors

// -----
nn.graph @g(%a: tensor<4xi32>, %b: tensor<4xi32>) -> tensor<4xi32> {
  %y = nn.add %a, %b : (tensor<4xi32>, tensor<4xi32>) -> tensor<4xi32>
  nn.output %y : tensor<4xi32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.add' op expected float or quantized element type, got %a: tensor<4xi32>

// -----
nn.graph @g(%a: tensor<4xf32>) -> tensor<5xf32> {
  %y = nn.relu %a : (tensor<4xf32>) -> tensor<5xf32>
  nn.output %y : tensor<5xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.relu' op result shape must equal input shape: %a: tensor<4xf32> -> tensor<5xf32>

// -----
nn.graph @g(%a: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.clamp %a {min = 1.0 : f64, max = -1.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.clamp' op clamp bounds must satisfy min <= max, got [1.0, -1.0]

// -----
nn.graph @g(%a: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.softmax %a {beta = 0.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.softmax' op beta must be positive, got 0.0

// -----
nn.graph @g(%a: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.relu %a {qparams = {multiplier = array<i32: 1>}} : (tensor<4xf32>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.relu' op qparams given on a float op

// -----
nn.graph @g(%x: tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x2x2x2x!quant.uniform<i8:f32, 0.25>> {
  %y = nn.max_pool2d %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = "valid"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x2x2x2x!quant.uniform<i8:f32, 0.25>>
  nn.output %y : tensor<1x2x2x2x!quant.uniform<i8:f32, 0.25>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.max_pool2d' op pooling keeps the quantization: element types must match

// -----
nn.graph @g(%x: tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32> {
  %y = nn.avg_pool2d %x {kernel = array<i64: 0, 2>, strides = array<i64: 2, 2>, padding = "valid"} : (tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32>
  nn.output %y : tensor<1x2x2x2xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.avg_pool2d' op kernel must be positive, got [0, 2]

// -----
nn.graph @g(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32> {
  %y = nn.mean %x {axes = array<i64: 4>} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  nn.output %y : tensor<1x4x4x2xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.mean' op axes [4] out of range for %x: tensor<1x4x4x2xf32>

// -----
nn.graph @g(%x: tensor<1x4x4x2xf32>) -> tensor<1x1x1x2xf32> {
  %y = nn.mean %x {axes = array<i64: 1, 2>} : (tensor<1x4x4x2xf32>) -> tensor<1x1x1x2xf32>
  nn.output %y : tensor<1x1x1x2xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.mean' op result shape [1, 1, 1, 2] != expected [1, 2]

// -----
nn.graph @g(%x: tensor<2x3xf32>) -> tensor<7xf32> {
  %y = nn.reshape %x : (tensor<2x3xf32>) -> tensor<7xf32>
  nn.output %y : tensor<7xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.reshape' op element count changes: %x: tensor<2x3xf32> -> tensor<7xf32>

// -----
nn.graph @g(%x: tensor<2x3x!quant.uniform<i8:f32, 0.5>>) -> tensor<6x!quant.uniform<i8:f32, 0.25>> {
  %y = nn.reshape %x : (tensor<2x3x!quant.uniform<i8:f32, 0.5>>) -> tensor<6x!quant.uniform<i8:f32, 0.25>>
  nn.output %y : tensor<6x!quant.uniform<i8:f32, 0.25>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.reshape' op reshape keeps the element type: element types must match

// -----
nn.graph @g(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
  %y = nn.transpose %x {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  nn.output %y : tensor<2x2xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.transpose' op perm [0, 0] is not a permutation of 2 dimensions

// -----
nn.graph @g(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %y = nn.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  nn.output %y : tensor<2x3xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.transpose' op result shape [2, 3] != expected [3, 2]

// -----
nn.graph @g(%x: tensor<2x3xf32>) -> tensor<4x3xf32> {
  %y = nn.pad %x {pads = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<4x3xf32>
  nn.output %y : tensor<4x3xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.pad' op pads must hold 4 non-negative integers (before, after per dimension), got [1, 1]

// -----
nn.graph @g(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<4x3xf32> {
  %y = nn.concat %a, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  nn.output %y : tensor<4x3xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.concat' op input %b: tensor<2x4xf32> does not match result tensor<4x3xf32> off axis 0

// -----
nn.graph @g(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<2x7xf32> {
  %y = nn.concat %a, %b {axis = 2 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<2x7xf32>
  nn.output %y : tensor<2x7xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.concat' op axis 2 out of range for rank 2

// -----
nn.graph @g(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %y = nn.concat %a, %b {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
  nn.output %y : tensor<2x8xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.concat' op inputs sum to 7 along axis 1, result has 8

// -----
nn.graph @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.quantize %x : (tensor<4xf32>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.quantize' op result must be quantized, got tensor<4xf32>

// -----
nn.graph @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.dequantize %x : (tensor<4xf32>) -> tensor<4xf32>
  nn.output %y : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.dequantize' op input must be quantized, got %x: tensor<4xf32>
// -----
nn.graph @g(%x: tensor<4xf32>) -> tensor<5xf32> {
  nn.output %x : tensor<4xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:1: error: 'nn.graph' op nn.output types do not match the graph results: [tensor<4xf32>] vs [tensor<5xf32>]

// -----
func.func @f(%x: tensor<4xf32>) {
  nn.output %x : tensor<4xf32>
}
// CHECK: error: 'nn.output' op expects parent op 'nn.graph'

// -----
%c = nn.const dense<[1.0, 2.0]> : tensor<2xf32> -> tensor<3xf32>
// CHECK: error: 'nn.const' op value shape [2] does not match result type tensor<3xf32>

// -----
%c = nn.const dense<[1, 2]> : tensor<2xi16> -> tensor<2x!quant.uniform<i8:f32, 0.5>>
// CHECK: error: 'nn.const' op a quantized constant of type tensor<2x!quant.uniform<i8:f32, 0.5>> must hold 8-bit integers, got i16

// -----
nn.graph @g(%x: tensor<4xf32>) -> tensor<4xf16> {
  %y = nn.copy %x : (tensor<4xf32>) -> tensor<4xf16>
  nn.output %y : tensor<4xf16>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.copy' op a copy keeps its type: %x: tensor<4xf32> -> tensor<4xf16>

// -----
nn.graph @g(%x: tensor<2x3x!quant.uniform<i8:f32:1, {0.5,0.25,0.125}>>) -> tensor<3x2x!quant.uniform<i8:f32:1, {0.5,0.25}>> {
  %y = nn.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3x!quant.uniform<i8:f32:1, {0.5,0.25,0.125}>>) -> tensor<3x2x!quant.uniform<i8:f32:1, {0.5,0.25}>>
  nn.output %y : tensor<3x2x!quant.uniform<i8:f32:1, {0.5,0.25}>>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.transpose' op transposing %x: tensor<2x3x!quant.uniform<i8:f32:1, {0.5,0.25,0.125}>> gives element type !quant.uniform<i8:f32:0, {0.5,0.25,0.125}>, not !quant.uniform<i8:f32:1, {0.5,0.25}>

// -----
nn.graph @g(%x: tensor<1x2x2x1xf32>) -> tensor<1x4x4x1xf32> {
  %y = nn.avg_pool2d %x {kernel = array<i64: 1, 1>, strides = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>} : (tensor<1x2x2x1xf32>) -> tensor<1x4x4x1xf32>
  nn.output %y : tensor<1x4x4x1xf32>
}
// CHECK: ops_invalid.mlir:{{[0-9]+}}:3: error: 'nn.avg_pool2d' op the window of output position [0, 0] covers only padding (kernel [1, 1], padding [1, 1, 1, 1]): its average is undefined
