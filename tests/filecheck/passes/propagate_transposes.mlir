// RUN: nnopt-opt %s -p nn-propagate-transposes --split-input-file | filecheck %s

// The NCHW pattern of an imported ONNX CNN: conv between transposes, a bias
// add with an NCHW constant, relu, then the next layout-sensitive op.
// CHECK-LABEL: nn.graph @conv_add_relu_pool
// CHECK-NEXT:    %w = nn.const
// CHECK-NEXT:    %in = nn.transpose %x {perm = array<i64: 0, 2, 3, 1>}
// CHECK-NEXT:    %y = nn.conv2d %in, %w
// CHECK-NEXT:    %b = nn.const dense<{{.*}}> : tensor<1x1x1x2xf32>
// CHECK-NEXT:    %s = nn.add %y, %b : (tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>) -> tensor<1x4x4x2xf32>
// CHECK-NEXT:    %r = nn.relu %s : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
// CHECK-NEXT:    %p = nn.max_pool2d %r
// CHECK-NEXT:    %out = nn.transpose %p {perm = array<i64: 0, 3, 1, 2>}
// CHECK-NEXT:    nn.output %out : tensor<1x2x2x2xf32>
nn.graph @conv_add_relu_pool(%x: tensor<1x3x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.const dense<1.0> : tensor<2x3x3x3xf32>
  %in = nn.transpose %x {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x3x4x4xf32>) -> tensor<1x4x4x3xf32>
  %y = nn.conv2d %in, %w {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x4x4x3xf32>, tensor<2x3x3x3xf32>) -> tensor<1x4x4x2xf32>
  %t = nn.transpose %y {perm = array<i64: 0, 3, 1, 2>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x4x4xf32>
  %b = nn.const dense<[[[1.0]], [[2.0]]]> : tensor<2x1x1xf32>
  %s = nn.add %t, %b : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %r = nn.relu %s : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %back = nn.transpose %r {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x4x4x2xf32>
  %p = nn.max_pool2d %back {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = "valid"} : (tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32>
  %out = nn.transpose %p {perm = array<i64: 0, 3, 1, 2>} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  nn.output %out : tensor<1x2x2x2xf32>
}

// -----

// A transpose of a constant folds into the constant.
// CHECK-LABEL: nn.graph @const_fold
// CHECK-NEXT:    %t = nn.const dense<{{\[\[}}1, 4], [2, 5], [3, 6]]> : tensor<3x2xi8> -> tensor<3x2x!quant.uniform<i8:f32, 0.5:3>>
// CHECK-NEXT:    nn.output %t
nn.graph @const_fold() -> tensor<3x2x!quant.uniform<i8:f32, 0.5:3>> {
  %c = nn.const dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8> -> tensor<2x3x!quant.uniform<i8:f32, 0.5:3>>
  %t = nn.transpose %c {perm = array<i64: 1, 0>} : (tensor<2x3x!quant.uniform<i8:f32, 0.5:3>>) -> tensor<3x2x!quant.uniform<i8:f32, 0.5:3>>
  nn.output %t : tensor<3x2x!quant.uniform<i8:f32, 0.5:3>>
}

// -----

// The NCHW flatten before a classifier: the permutation moves into the weight columns.
// CHECK-LABEL: nn.graph @flatten_fc
// CHECK-NEXT:    %w = nn.const dense<{{\[\[}}0.000000e+00, 3.000000e+00, 1.000000e+00, 4.000000e+00, 2.000000e+00, 5.000000e+00]]> : tensor<1x6xf32>
// CHECK-NEXT:    %f = nn.reshape %x : (tensor<1x1x3x2xf32>) -> tensor<1x6xf32>
// CHECK-NEXT:    %y = nn.fully_connected %f, %w
nn.graph @flatten_fc(%x: tensor<1x1x3x2xf32>) -> tensor<1x1xf32> {
  %t = nn.transpose %x {perm = array<i64: 0, 3, 1, 2>} : (tensor<1x1x3x2xf32>) -> tensor<1x2x1x3xf32>
  %f = nn.reshape %t : (tensor<1x2x1x3xf32>) -> tensor<1x6xf32>
  %w = nn.const dense<[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]> : tensor<1x6xf32>
  %y = nn.fully_connected %f, %w : (tensor<1x6xf32>, tensor<1x6xf32>) -> tensor<1x1xf32>
  nn.output %y : tensor<1x1xf32>
}

// -----

// Pads, means and concats are permuted; a transpose of size-1 dimensions before a reshape vanishes.
// CHECK-LABEL: nn.graph @pad_mean_concat
// CHECK-NEXT:    %p = nn.pad %x {pads = array<i64: 0, 0, 1, 1, 2, 2, 0, 0>}
// CHECK-SAME:      (tensor<1x4x4x2xf32>) -> tensor<1x6x8x2xf32>
// CHECK-NEXT:    %c = nn.concat %p, %p {axis = 3 : i64}
// CHECK-SAME:      -> tensor<1x6x8x4xf32>
// CHECK-NEXT:    %m = nn.mean %c {axes = array<i64: 1, 2>, keep_dims}
// CHECK-SAME:      -> tensor<1x1x1x4xf32>
// CHECK-NEXT:    %f = nn.reshape %m : (tensor<1x1x1x4xf32>) -> tensor<1x4xf32>
// CHECK-NEXT:    nn.output %f
nn.graph @pad_mean_concat(%x: tensor<1x4x4x2xf32>) -> tensor<1x4xf32> {
  %t = nn.transpose %x {perm = array<i64: 0, 3, 1, 2>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x4x4xf32>
  %p = nn.pad %t {pads = array<i64: 0, 0, 0, 0, 1, 1, 2, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x6x8xf32>
  %c = nn.concat %p, %p {axis = 1 : i64} : (tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>) -> tensor<1x4x6x8xf32>
  %m = nn.mean %c {axes = array<i64: 2, 3>, keep_dims} : (tensor<1x4x6x8xf32>) -> tensor<1x4x1x1xf32>
  %f = nn.reshape %m : (tensor<1x4x1x1xf32>) -> tensor<1x4xf32>
  nn.output %f : tensor<1x4xf32>
}

// -----

// A transpose feeding a non-constant, non-transposed operand stays (nothing to cancel).
// CHECK-LABEL: nn.graph @blocked
// CHECK-NEXT:    %t = nn.transpose %x
// CHECK-NEXT:    %s = nn.add %t, %y
nn.graph @blocked(%x: tensor<2x3xf32>, %y: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %t = nn.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %s = nn.add %t, %y : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<3x2xf32>
  nn.output %s : tensor<3x2xf32>
}
