import { Body, Controller, Delete, Get, HttpCode, Inject, Patch, Post, Query, Type } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { UuidParam } from '../../infra/http/params';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser } from '../../infra/access/roles';
import type { ResourceDef, ResourceService } from './resource';

export const serviceToken = (def: ResourceDef) => `registry:${def.path}`;

const pascal = (s: string) => s.replace(/(^|[-_])([a-z])/g, (_, __, c: string) => c.toUpperCase());

/** Builds the REST controller of one registry resource: list, get, create, update, delete; answers carry the resource's view (its allow-list) only. */
export function resourceController(def: ResourceDef): Type<unknown> {
  @ApiTags(def.path)
  @ApiBearerAuth()
  @Controller(def.path)
  class ResourceController {
    constructor(@Inject(serviceToken(def)) private readonly svc: ResourceService<{ id: string }>) {}

    /** Lists {resource} (filters and paging as the query says). */
    @Roles(...def.readRoles)
    @Get()
    list(@Query() query: Record<string, unknown>, @CurrentUser() user: AuthUser) {
      return this.svc.list(user, query);
    }

    /** One of {resource} by id. */
    @Roles(...def.readRoles)
    @Get(':id')
    async get(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
      return this.svc.view(await this.svc.get(user, id));
    }

    /** Creates one of {resource}. Audited. */
    @Roles(...def.writeRoles)
    @Post()
    async create(@Body() body: Record<string, unknown>, @CurrentUser() user: AuthUser) {
      return this.svc.view(await this.svc.create(user, body));
    }

    /** Changes one of {resource}. Audited. */
    @Roles(...def.writeRoles)
    @Patch(':id')
    async update(@UuidParam() id: string, @Body() body: Record<string, unknown>, @CurrentUser() user: AuthUser) {
      return this.svc.view(await this.svc.update(user, id, body));
    }

    /** Deletes one of {resource}. Audited. */
    @Roles(...def.writeRoles)
    @Delete(':id')
    @HttpCode(204)
    async remove(@UuidParam() id: string, @CurrentUser() user: AuthUser): Promise<void> {
      await this.svc.remove(user, id);
    }
  }
  // The global ValidationPipe and OpenAPI read parameter types from this metadata; point them at
  // the resource's DTOs so one class serves every resource with full field-level validation.
  const proto = ResourceController.prototype;
  Reflect.defineMetadata('design:paramtypes', [def.queryDto, Object], proto, 'list');
  Reflect.defineMetadata('design:paramtypes', [def.createDto, Object], proto, 'create');
  Reflect.defineMetadata('design:paramtypes', [String, def.updateDto, Object], proto, 'update');
  Object.defineProperty(ResourceController, 'name', { value: `${pascal(def.path)}Controller` });
  return ResourceController;
}
