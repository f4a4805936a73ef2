// RUN: nnopt-opt %s | nnopt-opt | filecheck %s
// RUN: nnopt-opt %s --print-op-generic | nnopt-opt | filecheck %s

// Float graph exercising every op.
// CHECK-LABEL: nn.graph @all_float(%x: tensor<1x8x8x3xf32> {nn.name = "image"}, %m: tensor<2x4x5xf32>) -> (tensor<1x10xf32>, tensor<2x4x10xf32>, tensor<2x4x4xf32>) {
nn.graph @all_float(%x: tensor<1x8x8x3xf32> {nn.name = "image"}, %m: tensor<2x4x5xf32>) -> (tensor<1x10xf32>, tensor<2x4x10xf32>, tensor<2x4x4xf32>) {
  // CHECK-NEXT: %w = nn.const dense<1.000000e+00> : tensor<4x3x3x3xf32>
  %w = nn.const dense<1.0> : tensor<4x3x3x3xf32>
  // CHECK-NEXT: %b = nn.const dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
  %b = nn.const dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  // CHECK-NEXT: %c1 = nn.conv2d %x, %w, %b {strides = array<i64: 1, 1>, padding = "same", dilations = array<i64: 1, 1>, fused_activation = "relu"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x8x8x4xf32>
  %c1 = nn.conv2d %x, %w, %b {strides = array<i64: 1, 1>, padding = "same", dilations = array<i64: 1, 1>, fused_activation = "relu"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x8x8x4xf32>
  // CHECK-NEXT: %c2 = nn.conv2d %x, %w {strides = array<i64: 2, 2>, padding = array<i64: 1, 0, 1, 0>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x4x4xf32>
  %c2 = nn.conv2d %x, %w {strides = array<i64: 2, 2>, padding = array<i64: 1, 0, 1, 0>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x4x4xf32>
  %dw = nn.const dense<0.5> : tensor<1x3x3x8xf32>
  // CHECK: %d1 = nn.depthwise_conv2d %c1, %dw {strides = array<i64: 1, 1>, padding = "valid", dilations = array<i64: 2, 2>} : (tensor<1x8x8x4xf32>, tensor<1x3x3x8xf32>) -> tensor<1x4x4x8xf32>
  %d1 = nn.depthwise_conv2d %c1, %dw {strides = array<i64: 1, 1>, padding = "valid", dilations = array<i64: 2, 2>} : (tensor<1x8x8x4xf32>, tensor<1x3x3x8xf32>) -> tensor<1x4x4x8xf32>
  // CHECK-NEXT: %mp = nn.max_pool2d %d1 {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = "valid"} : (tensor<1x4x4x8xf32>) -> tensor<1x2x2x8xf32>
  %mp = nn.max_pool2d %d1 {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = "valid"} : (tensor<1x4x4x8xf32>) -> tensor<1x2x2x8xf32>
  // CHECK-NEXT: %ap = nn.avg_pool2d %d1 {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, padding = "same", fused_activation = "relu6"} : (tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  %ap = nn.avg_pool2d %d1 {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, padding = "same", fused_activation = "relu6"} : (tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  // CHECK-NEXT: %mean = nn.mean %ap {axes = array<i64: 1, 2>, keep_dims} : (tensor<1x4x4x8xf32>) -> tensor<1x1x1x8xf32>
  %mean = nn.mean %ap {axes = array<i64: 1, 2>, keep_dims} : (tensor<1x4x4x8xf32>) -> tensor<1x1x1x8xf32>
  // CHECK-NEXT: %mean2 = nn.mean %mp {axes = array<i64: -3, -2>} : (tensor<1x2x2x8xf32>) -> tensor<1x8xf32>
  %mean2 = nn.mean %mp {axes = array<i64: -3, -2>} : (tensor<1x2x2x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %flat = nn.reshape %mean : (tensor<1x1x1x8xf32>) -> tensor<1x8xf32>
  %flat = nn.reshape %mean : (tensor<1x1x1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %s = nn.add %flat, %mean2 {fused_activation = "none"} : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  %s = nn.add %flat, %mean2 {fused_activation = "none"} : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  %one = nn.const dense<1.0> : tensor<8xf32>
  // CHECK: %d = nn.sub %s, %one : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
  %d = nn.sub %s, %one : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %p = nn.mul %d, %d : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  %p = nn.mul %d, %d : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %r = nn.relu %p : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %r = nn.relu %p : (tensor<1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %r6 = nn.relu6 %r : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %r6 = nn.relu6 %r : (tensor<1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %cl = nn.clamp %r6 {min = -1.000000e+00 : f64, max = 1.000000e+00 : f64} : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %cl = nn.clamp %r6 {min = -1.0 : f64, max = 1.0 : f64} : (tensor<1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %lg = nn.logistic %cl : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %lg = nn.logistic %cl : (tensor<1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %th = nn.tanh %lg : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %th = nn.tanh %lg : (tensor<1x8xf32>) -> tensor<1x8xf32>
  // CHECK-NEXT: %pd = nn.pad %th {pads = array<i64: 0, 0, 1, 1>, value = 0.000000e+00 : f64} : (tensor<1x8xf32>) -> tensor<1x10xf32>
  %pd = nn.pad %th {pads = array<i64: 0, 0, 1, 1>, value = 0.0 : f64} : (tensor<1x8xf32>) -> tensor<1x10xf32>
  %fw = nn.const dense<0.1> : tensor<10x10xf32>
  // CHECK: %fc = nn.fully_connected %pd, %fw {fused_activation = "relu_n1_to_1"} : (tensor<1x10xf32>, tensor<10x10xf32>) -> tensor<1x10xf32>
  %fc = nn.fully_connected %pd, %fw {fused_activation = "relu_n1_to_1"} : (tensor<1x10xf32>, tensor<10x10xf32>) -> tensor<1x10xf32>
  // CHECK-NEXT: %sm = nn.softmax %fc {beta = 1.000000e+00 : f64} : (tensor<1x10xf32>) -> tensor<1x10xf32>
  %sm = nn.softmax %fc {beta = 1.0 : f64} : (tensor<1x10xf32>) -> tensor<1x10xf32>
  // CHECK-NEXT: %t = nn.transpose %m {perm = array<i64: 0, 2, 1>} : (tensor<2x4x5xf32>) -> tensor<2x5x4xf32>
  %t = nn.transpose %m {perm = array<i64: 0, 2, 1>} : (tensor<2x4x5xf32>) -> tensor<2x5x4xf32>
  // CHECK-NEXT: %mm = nn.matmul %m, %t : (tensor<2x4x5xf32>, tensor<2x5x4xf32>) -> tensor<2x4x4xf32>
  %mm = nn.matmul %m, %t : (tensor<2x4x5xf32>, tensor<2x5x4xf32>) -> tensor<2x4x4xf32>
  // CHECK-NEXT: %mt = nn.matmul %m, %m {adj_y} : (tensor<2x4x5xf32>, tensor<2x4x5xf32>) -> tensor<2x4x4xf32>
  %mt = nn.matmul %m, %m {adj_y} : (tensor<2x4x5xf32>, tensor<2x4x5xf32>) -> tensor<2x4x4xf32>
  // CHECK-NEXT: %mx = nn.matmul %t, %m {adj_x, adj_y} : (tensor<2x5x4xf32>, tensor<2x4x5xf32>) -> tensor<2x4x4xf32>
  %mx = nn.matmul %t, %m {adj_x, adj_y} : (tensor<2x5x4xf32>, tensor<2x4x5xf32>) -> tensor<2x4x4xf32>
  %ones = nn.const dense<1.0> : tensor<2x4x1xf32>
  // CHECK: %cat = nn.concat %mm, %mt, %ones, %ones {axis = -1 : i64} : (tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x1xf32>, tensor<2x4x1xf32>) -> tensor<2x4x10xf32>
  %cat = nn.concat %mm, %mt, %ones, %ones {axis = -1 : i64} : (tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x1xf32>, tensor<2x4x1xf32>) -> tensor<2x4x10xf32>
  // CHECK-NEXT: %cat2 = nn.concat %mx {axis = 0 : i64} : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %cat2 = nn.concat %mx {axis = 0 : i64} : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %sl = nn.reshape %cat : (tensor<2x4x10xf32>) -> tensor<2x4x10xf32>
  // CHECK: nn.output %sm, %sl, %cat2 : tensor<1x10xf32>, tensor<2x4x10xf32>, tensor<2x4x4xf32>
  nn.output %sm, %sl, %cat2 : tensor<1x10xf32>, tensor<2x4x10xf32>, tensor<2x4x4xf32>
}

// Quantized graph: per-axis weights, int32 bias, rounding modes and qparams.
// CHECK-LABEL: nn.graph @quantized(%x: tensor<1x4x4x2xf32>) -> tensor<1x2xf32> {
nn.graph @quantized(%x: tensor<1x4x4x2xf32>) -> tensor<1x2xf32> {
  // CHECK-NEXT: %q = nn.quantize %x : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.05:-3>>
  %q = nn.quantize %x : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.05:-3>>
  %w = nn.const dense<[[[[1, -1]]], [[[2, 3]]]]> : tensor<2x1x1x2xi8> -> tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02}>>
  %b = nn.const dense<[10, -20]> : tensor<2xi32> -> tensor<2x!quant.uniform<i32:f32:0, {0.0005,0.001}>>
  // CHECK: %c = nn.conv2d %q, %w, %b {strides = array<i64: 1, 1>, padding = "valid", rounding = "tflite_double", qparams = {multiplier = array<i32: 1073741824, 1073741824>, shift = array<i32: -4, -3>}} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.05:-3>>, tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02}>>, tensor<2x!quant.uniform<i32:f32:0, {0.0005,0.001}>>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:5>>
  %c = nn.conv2d %q, %w, %b {strides = array<i64: 1, 1>, padding = "valid", rounding = "tflite_double", qparams = {multiplier = array<i32: 1073741824, 1073741824>, shift = array<i32: -4, -3>}} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.05:-3>>, tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02}>>, tensor<2x!quant.uniform<i32:f32:0, {0.0005,0.001}>>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:5>>
  // CHECK-NEXT: %a = nn.add %c, %c {rounding = "single"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:5>>, tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:5>>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.2:5>>
  %a = nn.add %c, %c {rounding = "single"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:5>>, tensor<1x4x4x2x!quant.uniform<i8:f32, 0.1:5>>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.2:5>>
  // CHECK-NEXT: %p = nn.avg_pool2d %a {kernel = array<i64: 4, 4>, strides = array<i64: 4, 4>, padding = "valid"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.2:5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.2:5>>
  %p = nn.avg_pool2d %a {kernel = array<i64: 4, 4>, strides = array<i64: 4, 4>, padding = "valid"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.2:5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.2:5>>
  %r = nn.reshape %p : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.2:5>>) -> tensor<1x2x!quant.uniform<i8:f32, 0.2:5>>
  // CHECK: %s = nn.softmax %r {rounding = "onnx_rint"} : (tensor<1x2x!quant.uniform<i8:f32, 0.2:5>>) -> tensor<1x2x!quant.uniform<i8:f32, 0.00390625:-128>>
  %s = nn.softmax %r {rounding = "onnx_rint"} : (tensor<1x2x!quant.uniform<i8:f32, 0.2:5>>) -> tensor<1x2x!quant.uniform<i8:f32, 0.00390625:-128>>
  // CHECK-NEXT: %rq = nn.quantize %s : (tensor<1x2x!quant.uniform<i8:f32, 0.00390625:-128>>) -> tensor<1x2x!quant.uniform<u8:f32, 0.00390625>>
  %rq = nn.quantize %s : (tensor<1x2x!quant.uniform<i8:f32, 0.00390625:-128>>) -> tensor<1x2x!quant.uniform<u8:f32, 0.00390625>>
  // CHECK-NEXT: %y = nn.dequantize %rq : (tensor<1x2x!quant.uniform<u8:f32, 0.00390625>>) -> tensor<1x2xf32>
  %y = nn.dequantize %rq : (tensor<1x2x!quant.uniform<u8:f32, 0.00390625>>) -> tensor<1x2xf32>
  nn.output %y : tensor<1x2xf32>
}

// Several graphs per module; a graph may have no inputs.
// CHECK-LABEL: nn.graph @constant() -> tensor<2xf32> {
nn.graph @constant() -> tensor<2xf32> {
  %c = nn.const dense<[1.5, -2.5]> : tensor<2xf32>
  nn.output %c : tensor<2xf32>
}

// Overlay copies and the memory space of a constant.
// CHECK-LABEL: nn.graph @overlay
nn.graph @overlay(%x: tensor<1x4xf32>) -> tensor<1x2xf32> {
  // CHECK-NEXT: %w = nn.const dense<5.000000e-01> : tensor<2x4xf32> {nn.space = "flash"}
  %w = nn.const dense<0.5> : tensor<2x4xf32> {nn.space = "flash"}
  // CHECK-NEXT: %wf = nn.copy %w : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %wf = nn.copy %w : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = nn.fully_connected %x, %wf : (tensor<1x4xf32>, tensor<2x4xf32>) -> tensor<1x2xf32>
  nn.output %y : tensor<1x2xf32>
}

// A per-axis quantized dimension moves with a transposition.
// CHECK-LABEL: nn.graph @transpose_per_axis
nn.graph @transpose_per_axis() -> tensor<3x2x!quant.uniform<i8:f32:0, {0.5,0.25,0.125}>> {
  %w = nn.const dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8> -> tensor<2x3x!quant.uniform<i8:f32:1, {0.5,0.25,0.125}>>
  // CHECK: nn.transpose %w {perm = array<i64: 1, 0>} : (tensor<2x3x!quant.uniform<i8:f32:1, {0.5,0.25,0.125}>>) -> tensor<3x2x!quant.uniform<i8:f32:0, {0.5,0.25,0.125}>>
  %t = nn.transpose %w {perm = array<i64: 1, 0>} : (tensor<2x3x!quant.uniform<i8:f32:1, {0.5,0.25,0.125}>>) -> tensor<3x2x!quant.uniform<i8:f32:0, {0.5,0.25,0.125}>>
  nn.output %t : tensor<3x2x!quant.uniform<i8:f32:0, {0.5,0.25,0.125}>>
}
