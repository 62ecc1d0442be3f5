import { ApiProperty } from '@nestjs/swagger';

/** The bodies of Triton's model repository extension (extension_model_repository.md). */

export class RepositoryIndexRequestDto {
  @ApiProperty({ required: false, description: 'Only versions that are READY' })
  readonly ready?: boolean;
}

export class RepositoryIndexEntryDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ example: '1', required: false })
  readonly version?: string;

  @ApiProperty({ enum: ['READY', 'LOADING', 'FAILED', 'UNAVAILABLE'] })
  readonly state!: string;

  @ApiProperty({ required: false })
  readonly reason?: string;
}

export class RepositoryLoadRequestDto {
  @ApiProperty({
    required: false,
    description:
      "`config`: a config.json (as a JSON string or object) to use instead of the folder's, written into the repository; " +
      "`file:<version>/model.onnx`: that version's model file in base64, written into the repository atomically",
    example: { config: '{"default_version": 2}' },
  })
  readonly parameters?: Record<string, unknown>;
}

/** One version after a load, as the index lists it. */
export class RepositoryVersionDto {
  @ApiProperty({ example: '2' })
  readonly version!: string;

  @ApiProperty({ enum: ['READY', 'LOADING', 'FAILED'] })
  readonly state!: string;

  @ApiProperty({ required: false })
  readonly reason?: string;
}

/** What a load made of the model: Triton answers an empty object, which its clients read as success. */
export class RepositoryLoadResponseDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ example: '2', required: false, description: 'The version unversioned requests now reach' })
  readonly default_version?: string;

  @ApiProperty({ type: [RepositoryVersionDto] })
  readonly versions!: RepositoryVersionDto[];
}

/** Unload takes Triton's parameters (such as unload_dependents), none of which means anything here. */
export class RepositoryUnloadRequestDto {
  @ApiProperty({ required: false })
  readonly parameters?: Record<string, unknown>;
}

/** An unload is answered with an empty object, as Triton does. */
export class RepositoryUnloadResponseDto {}
