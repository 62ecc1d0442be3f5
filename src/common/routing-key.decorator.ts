import { ApiHeader } from '@nestjs/swagger';

/** Documents, on an unversioned prediction route, the header that keeps a caller on one version. */
export const ApiRoutingKey = () =>
  ApiHeader({
    name: 'X-Routing-Key',
    required: false,
    description:
      "When the model's config.json splits traffic between versions: the same key is always answered by the same version while the weights stand",
    schema: { type: 'string', example: 'customer-42' },
  });
