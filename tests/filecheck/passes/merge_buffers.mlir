// RUN: nnopt-opt %s -p 'nn-merge-buffers{inplace-overlap=false}' --split-input-file | filecheck %s
// RUN: nnopt-opt %s -p 'nn-merge-buffers{views=false inplace-elementwise=false inplace-concat=false inplace-depthwise=false inplace-overlap=false fold-pad=false fold-chains=false}' --split-input-file | filecheck %s --check-prefix=OFF
// RUN: nnopt-opt %s -p 'nn-merge-buffers{report=true inplace-overlap=false}' --split-input-file 2>&1 >/dev/null | filecheck %s --check-prefix=REPORT

// Views and elementwise in place: the whole chain lives in the input's buffer.
// CHECK-LABEL: nn.graph @views
// CHECK-SAME:    %x: tensor<1x4x4x2xf32> {nn.place = #nn.place<"b0">}
// CHECK-SAME:    nn.buffers = {b0 = #nn.buffer<size = 128, align = 16, kind = output>}
// CHECK-NEXT:    %r = nn.relu %x {nn.place = #nn.place<"b0">}
// CHECK-NEXT:    %f = nn.reshape %r {nn.place = #nn.place<"b0">}
// CHECK-NEXT:    %s = nn.softmax %f {nn.place = #nn.place<"b0">}
// OFF-LABEL:   nn.graph @views
// OFF:           %r = nn.relu %x {nn.place = #nn.place<"b1">}
// OFF-NEXT:      %f = nn.reshape %r {nn.place = #nn.place<"b2">}
// OFF-NEXT:      %s = nn.softmax %f {nn.place = #nn.place<"b3">}
// REPORT:      // nn-merge-buffers @views
// REPORT-NEXT: //   lower bound 'sram': 256 -> 128 bytes (50.0% lower)
// REPORT-NEXT: //   buffers: 4 -> 1
// REPORT-NEXT: //   elementwise: r (nn.relu) in place of x
// REPORT-NEXT: //   view: f is a view of r
// REPORT-NEXT: //   elementwise: s (nn.softmax) in place of f
nn.graph @views(%x: tensor<1x4x4x2xf32>) -> tensor<1x32xf32> {
  %r = nn.relu %x : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %f = nn.reshape %r : (tensor<1x4x4x2xf32>) -> tensor<1x32xf32>
  %s = nn.softmax %f : (tensor<1x32xf32>) -> tensor<1x32xf32>
  nn.output %s : tensor<1x32xf32>
}

// -----

// An operand read later, or a graph output, is never overwritten; the add goes
// into the operand of the output's shape, never into the broadcast one; a
// wider result (i8 -> f32) never overwrites its input; the narrower %q could, but
// its 128-byte buffer would then stay reserved while %a and %d are live: refused.
// CHECK-LABEL: nn.graph @elementwise
// CHECK-NEXT:    %a = nn.relu %x {nn.place = #nn.place<"b2">}
// CHECK-NEXT:    %b = nn.add %a, %x {nn.place = #nn.place<"b0">}
// CHECK-NEXT:    %c = nn.add %bias, %b {nn.place = #nn.place<"b0">}
// CHECK-NEXT:    %q = nn.quantize %c {nn.place = #nn.place<"b5">}
// CHECK-NEXT:    %d = nn.dequantize %q {nn.place = #nn.place<"b6">}
// REPORT:      // nn-merge-buffers @elementwise
// REPORT:      //   elementwise: b (nn.add) in place of x
// REPORT-NEXT: //   elementwise: c (nn.add) in place of b
// REPORT-NEXT: //   kept apart (elementwise): q (nn.quantize) in place of c would raise the lower bound to 384
nn.graph @elementwise(%x: tensor<1x4x4x2xf32>, %bias: tensor<2xf32>) -> (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>) {
  %a = nn.relu %x : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %b = nn.add %a, %x : (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %c = nn.add %bias, %b : (tensor<2xf32>, tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %q = nn.quantize %c : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>
  %d = nn.dequantize %q : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x4x4x2xf32>
  nn.output %d, %a : tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>
}

// -----

// A narrower result whose input dies goes in place (f32 -> i8: 4 bytes read, 1 written).
// CHECK-LABEL: nn.graph @narrower
// CHECK-SAME:    nn.buffers = {b0 = #nn.buffer<size = 128, align = 16, kind = output>}
// CHECK-NEXT:    %q = nn.quantize %x {nn.place = #nn.place<"b0">}
// CHECK-NEXT:    %r = nn.relu %q {nn.place = #nn.place<"b0">}
nn.graph @narrower(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>> {
  %q = nn.quantize %x : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>
  %r = nn.relu %q : (tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>) -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>
  nn.output %r : tensor<1x4x4x2x!quant.uniform<i8:f32, 0.5>>
}

// -----

// Concat in place, nested: %b and %c are written into their channel slices of
// %inner (strided places), %inner and %d into their row slices of %outer, so
// %b lands at row 4 of %outer with %inner's strides; %c was in place of the
// graph input %x, which stays where it is. Nothing is copied, one buffer is left.
// CHECK-LABEL: nn.graph @concat
// CHECK-SAME:    nn.buffers = {b0 = #nn.buffer<size = 128, align = 16, kind = input>, b6 = #nn.buffer<size = 768, align = 16, kind = output>}
// CHECK:         %a = nn.conv2d %x, %w {nn.place = #nn.place<"b6" + 384, strides = [96, 24, 6, 1]>
// CHECK-NEXT:    %b = nn.relu %a {nn.place = #nn.place<"b6" + 384, strides = [96, 24, 6, 1]>}
// CHECK-NEXT:    %c = nn.tanh %x {nn.place = #nn.place<"b6" + 400, strides = [96, 24, 6, 1]>}
// CHECK-NEXT:    %inner = nn.concat %b, %c {nn.place = #nn.place<"b6" + 384>
// CHECK-NEXT:    %d = nn.conv2d %inner, %w2 {nn.place = #nn.place<"b6">
// CHECK-NEXT:    %outer = nn.concat %d, %inner {nn.place = #nn.place<"b6">
// OFF-LABEL:   nn.graph @concat
// OFF:           %inner = nn.concat %b, %c {nn.place = #nn.place<"b4">
// REPORT:      // nn-merge-buffers @concat
// REPORT-NEXT: //   lower bound 'sram': 1,536 -> 768 bytes (50.0% lower)
// REPORT:      //   concat: b written into its slice of inner (+0 strides [96, 24, 6, 1])
// REPORT-NEXT: //   concat: c written into its slice of inner (+16 strides [96, 24, 6, 1])
// REPORT-NEXT: //   concat: d written into its slice of outer (+0)
// REPORT-NEXT: //   concat: inner written into its slice of outer (+384)
nn.graph @concat(%x: tensor<1x4x4x2xf32>) -> tensor<1x8x4x6xf32> {
  %w = nn.const dense<0.5> : tensor<4x1x1x2xf32>
  %w2 = nn.const dense<0.25> : tensor<6x1x1x2xf32>
  %a = nn.conv2d %x, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x4x4x2xf32>, tensor<4x1x1x2xf32>) -> tensor<1x4x4x4xf32>
  %b = nn.relu %a : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %c = nn.tanh %x : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %inner = nn.concat %b, %c {axis = 3 : i64} : (tensor<1x4x4x4xf32>, tensor<1x4x4x2xf32>) -> tensor<1x4x4x6xf32>
  %d = nn.conv2d %inner, %w2 {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x4x4x6xf32>, tensor<6x1x1x2xf32>) -> tensor<1x4x4x6xf32>
  %outer = nn.concat %d, %inner {axis = 1 : i64} : (tensor<1x4x4x6xf32>, tensor<1x4x4x6xf32>) -> tensor<1x8x4x6xf32>
  nn.output %outer : tensor<1x8x4x6xf32>
}

// -----

// Depthwise in place (TinyEngine): %d overwrites %r channel by channel through a
// 36-byte scratch (6x6 int8, one channel); multiplier 2 (%m) is never in place that way
// (merge_buffers_overlap.mlir has it written partly over %x).
!q = !quant.uniform<i8:f32, 0.5:1>
!w = !quant.uniform<i8:f32, 0.25>
// CHECK-LABEL: nn.graph @depthwise
// CHECK-SAME:    s0 = #nn.buffer<size = 36, align = 16, kind = scratch>
// CHECK:         %r = nn.relu %x {nn.place = #nn.place<"b1">}
// CHECK-NEXT:    %d = nn.depthwise_conv2d %r, %w {nn.place = #nn.place<"b1">, nn.scratch = #nn.place<"s0">
// CHECK-NEXT:    %m = nn.depthwise_conv2d %x, %w2 {nn.place = #nn.place<"b3">,
// OFF-LABEL:   nn.graph @depthwise
// OFF-NOT:       nn.scratch
// OFF:           nn.output
// REPORT:      //   depthwise: d (nn.depthwise_conv2d) in place of r, 36 B scratch
nn.graph @depthwise(%x: tensor<1x6x6x3x!q>) -> (tensor<1x6x6x3x!q>, tensor<1x6x6x6x!q>) {
  %w = nn.const dense<3> : tensor<1x3x3x3xi8> -> tensor<1x3x3x3x!w>
  %w2 = nn.const dense<3> : tensor<1x3x3x6xi8> -> tensor<1x3x3x6x!w>
  %r = nn.relu %x : (tensor<1x6x6x3x!q>) -> tensor<1x6x6x3x!q>
  %d = nn.depthwise_conv2d %r, %w {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x6x6x3x!q>, tensor<1x3x3x3x!w>) -> tensor<1x6x6x3x!q>
  %m = nn.depthwise_conv2d %x, %w2 {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x6x6x3x!q>, tensor<1x3x3x6x!w>) -> tensor<1x6x6x6x!q>
  nn.output %d, %m : tensor<1x6x6x3x!q>, tensor<1x6x6x6x!q>
}
