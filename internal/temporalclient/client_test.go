package temporalclient_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/internal/payloadcodec"
	"github.com/vigil-health/vigil/internal/temporalclient"
)

// TestFailureConverter_EncodesMessages: with a data converter, a failure's
// message and stack trace travel encrypted (they can quote patient data),
// and come back whole on the other side.
func TestFailureConverter_EncodesMessages(t *testing.T) {
	require.Nil(t, temporalclient.FailureConverter(nil), "no data converter: the SDK's default")

	k, err := payloadcodec.NewKey("k1")
	require.NoError(t, err)
	codec, err := payloadcodec.NewCodec([]payloadcodec.Key{k})
	require.NoError(t, err)
	fc := temporalclient.FailureConverter(codec.DataConverter())

	cause := temporal.NewApplicationError("bed ICU-BED-17 of patient MRN-SECRET-4711 is taken", "BedTaken", "detail MRN-SECRET-4711")
	f := fc.ErrorToFailure(cause)
	raw, err := proto.Marshal(f)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "MRN-SECRET-4711")
	require.NotContains(t, string(raw), "ICU-BED-17")
	require.Equal(t, payloadcodec.EncodingEncrypted, string(f.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))
	require.Equal(t, "BedTaken", f.GetApplicationFailureInfo().GetType(), "the type stays readable: callers branch on it")

	back := fc.FailureToError(f)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(back, &appErr))
	require.Equal(t, "bed ICU-BED-17 of patient MRN-SECRET-4711 is taken", appErr.Message())
	var detail string
	require.NoError(t, appErr.Details(&detail))
	require.Equal(t, "detail MRN-SECRET-4711", detail)
}
